"""Valid messages of every type, for the protocol tests (hypothesis strategies and fixed sets).

Field values are drawn from the full range of each struct code, so encoders meet their
limits; item counts and tails run up to what fits in MAX_PAYLOAD.
"""
from __future__ import annotations

import random

from hypothesis import strategies as st

from dexproto import catalog, stream

RANGES = {
    "B": (0, 0xFF), "b": (-0x80, 0x7F),
    "H": (0, 0xFFFF), "h": (-0x8000, 0x7FFF),
    "I": (0, 0xFFFFFFFF), "i": (-0x80000000, 0x7FFFFFFF),
}


def codes(fmt: str | None) -> str:
    """The struct codes of a catalog format, without its '<'."""
    return (fmt or "").lstrip("<")


def room(spec: stream.Spec) -> int:
    """Bytes left for items or tail after the header and head."""
    return catalog.MAX_PAYLOAD - catalog.HEADER_SIZE - spec.head.size


def max_items(spec: stream.Spec) -> int:
    return room(spec) // spec.item.size if spec.item else 0


def value_strategy(code: str):
    lo, hi = RANGES[code]
    return st.integers(lo, hi)


@st.composite
def messages(draw, names=None):
    """Any valid message: any type (or one of names), any field values, items, tail, seq."""
    name = draw(st.sampled_from(sorted(names or stream.SPECS_BY_NAME)))
    spec = stream.SPECS_BY_NAME[name]
    fields = {f: draw(value_strategy(c)) for f, c in zip(spec.head_fields, codes(spec.head.format))}
    items = []
    if spec.item:
        n = draw(st.integers(0, max_items(spec)))
        item = st.tuples(*[value_strategy(c) for c in codes(spec.item.format)])
        items = draw(st.lists(item, min_size=n, max_size=n))
    tail = draw(st.binary(max_size=room(spec))) if spec.tail_field else b""
    return stream.Message(name, fields, items, tail, draw(st.integers(0, 0xFFFF)))


def fixed_messages(seed: int = 2) -> list[stream.Message]:
    """Per type: every field at its minimum, at its maximum, and random; items and tail
    empty, one, 22 joints and the most that fit."""
    rng = random.Random(seed)
    out = []
    for spec in stream.SPECS.values():
        head_codes = codes(spec.head.format)
        item_codes = codes(spec.item.format) if spec.item else ""
        for pick in (min, max, None):
            def value(c, pick=pick):
                lo, hi = RANGES[c]
                return pick(lo, hi) if pick else rng.randint(lo, hi)
            fields = {f: value(c) for f, c in zip(spec.head_fields, head_codes)}
            counts = sorted({0, 1, min(22, max_items(spec)), max_items(spec)}) if spec.item else [0]
            for n in counts:
                items = [tuple(value(c) for c in item_codes) for _ in range(n)]
                tails = [b"", "pinky-\u00e9".encode(), bytes(rng.randrange(256) for _ in range(room(spec)))] \
                    if spec.tail_field else [b""]
                for tail in tails:
                    out.append(
                        stream.Message(spec.name, dict(fields), items, tail, rng.randrange(0x10000))
                    )
    return out
