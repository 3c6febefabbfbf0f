"""The host's side of the wire: typed messages, encoding, and a streaming decoder.

CPython only: COBS through the `cobs` C extension, CRC-32 through zlib. The layouts come
from `dexproto.catalog`, the same file the firmware imports.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from cobs import cobs

from dexproto import catalog
from dexproto.frame import DROP_NAMES, body_length_ok

_HEADER = struct.Struct(catalog.HEADER_FORMAT)
_CRC = struct.Struct("<I")
_MAX_RAW = catalog.MAX_PAYLOAD + catalog.CRC_SIZE  # decoded frame: payload and CRC
_MIN_RAW = catalog.HEADER_SIZE + catalog.CRC_SIZE


class ProtocolError(Exception):
    """A message that cannot be encoded, or a peer that speaks another protocol."""


class Spec:
    """One catalog row, with its structs compiled."""

    def __init__(self, row):
        self.row = row
        (self.type, self.name, self.direction, head_fmt, self.head_fields, item_fmt,
         self.item_fields, self.tail_field, self.summary) = row
        self.head = struct.Struct(head_fmt or "<")
        self.item = struct.Struct(item_fmt) if item_fmt else None

    def __repr__(self):
        return "Spec(%s)" % self.name


SPECS: dict[int, Spec] = {row[0]: Spec(row) for row in catalog.MESSAGES}
SPECS_BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS.values()}


@dataclass
class Message:
    """A decoded (or to-be-encoded) message.

    fields: the head's fields by name; items: one tuple per repeated item (per joint);
    tail: the trailing bytes (text) for messages that have one.
    """

    name: str
    fields: dict = field(default_factory=dict)
    items: list = field(default_factory=list)
    tail: bytes = b""
    seq: int = 0

    @property
    def spec(self) -> Spec:
        return SPECS_BY_NAME[self.name]

    def __getattr__(self, key):
        # Field access as attributes: msg.board_us, msg.mode ...
        fields = self.__dict__.get("fields")
        if fields is not None and key in fields:
            return fields[key]
        raise AttributeError(key)

    def column(self, name: str) -> list:
        """One item field across all items: msg.column('exo_cdeg') -> per-joint values."""
        i = self.spec.item_fields.index(name)
        return [it[i] for it in self.items]

    @property
    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


def encode_payload(msg: Message, seq: int | None = None) -> bytes:
    """The payload (header and body, no CRC) of a message; raises ProtocolError if it does not fit."""
    spec = SPECS_BY_NAME.get(msg.name)
    if spec is None:
        raise ProtocolError("unknown message %r" % msg.name)
    extra = set(msg.fields) - set(spec.head_fields)
    if extra:
        raise ProtocolError("%s has no field %s (its fields: %s)" % (
            msg.name, ", ".join(sorted(extra)), ", ".join(spec.head_fields) or "none"))
    if msg.items and spec.item is None:
        raise ProtocolError("%s has no per-joint items" % msg.name)
    if msg.tail and not spec.tail_field:
        raise ProtocolError("%s has no trailing text" % msg.name)
    try:
        head = spec.head.pack(*[msg.fields[f] for f in spec.head_fields])
    except KeyError as e:
        raise ProtocolError("%s needs field %s" % (msg.name, e)) from None
    except struct.error as e:
        raise ProtocolError("%s: %s" % (msg.name, e)) from None
    parts = [_HEADER.pack(spec.type, (msg.seq if seq is None else seq) & 0xFFFF), head]
    if spec.item is not None:
        try:
            parts.extend(spec.item.pack(*it) for it in msg.items)
        except (struct.error, TypeError) as e:
            raise ProtocolError("%s items (%s each): %s" % (
                msg.name, ", ".join(spec.item_fields), e)) from None
    elif spec.tail_field:
        parts.append(bytes(msg.tail))
    payload = b"".join(parts)
    if len(payload) > catalog.MAX_PAYLOAD:
        raise ProtocolError("%s is %d bytes, over the %d-byte maximum payload"
                            % (msg.name, len(payload), catalog.MAX_PAYLOAD))
    return payload


def frame_payload(payload: bytes) -> bytes:
    """COBS(payload || CRC32) || 0x00."""
    return cobs.encode(payload + _CRC.pack(zlib.crc32(payload))) + b"\x00"


def encode(msg: Message, seq: int | None = None) -> bytes:
    """The frame of a message, ready for the wire."""
    return frame_payload(encode_payload(msg, seq))


def make(name: str, *, items=(), tail=b"", seq=0, **fields) -> Message:
    """Message('TARGETS', items=[(100,), ...]) with the head fields as keywords."""
    return Message(name, fields, list(items), tail if isinstance(tail, bytes) else tail.encode(), seq)


def parse_payload(payload: bytes) -> Message:
    """Parse a CRC-checked payload. Raises ProtocolError on unknown type or bad length."""
    if len(payload) < catalog.HEADER_SIZE:
        raise ProtocolError("payload shorter than the header")
    t, seq = _HEADER.unpack_from(payload, 0)
    spec = SPECS.get(t)
    if spec is None:
        raise ProtocolError("unknown message type 0x%02x" % t)
    body = memoryview(payload)[catalog.HEADER_SIZE :]
    if not body_length_ok(spec.row, len(body)):
        raise ProtocolError("%s with a %d-byte body" % (spec.name, len(body)))
    fields = dict(zip(spec.head_fields, spec.head.unpack_from(body, 0)))
    rest = body[spec.head.size :]
    items = list(spec.item.iter_unpack(rest)) if spec.item is not None else []
    tail = bytes(rest) if spec.tail_field else b""
    return Message(spec.name, fields, items, tail, seq)


class StreamDecoder:
    """Turns bytes, in any chunking, into messages. Never raises on input.

    Every bad frame is dropped and counted in .drops by reason (frame.DROP_NAMES);
    decoding resumes after the next 0x00. Same rules, same counts as the board's
    frame.FrameReader.
    """

    def __init__(self, max_frame: int = catalog.MAX_FRAME):
        self.max_frame = max_frame
        self._pending = bytearray()
        self._skipping = False  # past max_frame with no 0x00: drop bytes until one comes
        self.drops = {name: 0 for name in DROP_NAMES}
        self.frames = 0
        self.bytes = 0

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def feed(self, data) -> list[Message]:
        """Decode what data completes; keep the unfinished rest for the next call."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        out: list[Message] = []
        self.bytes += len(data)
        start = 0
        while True:
            z = data.find(0, start)
            if z < 0:
                self._collect(data, start, len(data))
                return out
            if self._pending or self._skipping:
                self._collect(data, start, z)
                encoded = None if self._skipping else bytes(self._pending)
                self._pending.clear()
                self._skipping = False
            elif z - start > self.max_frame:
                self.drops["no_terminator"] += 1
                encoded = None
            else:
                encoded = data[start:z]  # the whole frame is in this chunk: no copy to _pending
            if encoded:  # empty: back-to-back delimiters, an idle line
                msg = self._frame(encoded)
                if msg is not None:
                    out.append(msg)
            start = z + 1

    def _collect(self, data, start, stop):
        """Keep data[start:stop] of an unfinished frame, or start skipping past max_frame."""
        if self._skipping or stop <= start:
            return
        if len(self._pending) + (stop - start) > self.max_frame:
            self._skipping = True
            self._pending.clear()
            self.drops["no_terminator"] += 1
        else:
            self._pending += data[start:stop]

    def _frame(self, encoded: bytes) -> Message | None:
        try:
            raw = cobs.decode(encoded)
        except cobs.DecodeError:
            self.drops["bad_cobs"] += 1
            return None
        if len(raw) > _MAX_RAW:
            self.drops["oversize"] += 1
            return None
        if len(raw) < _MIN_RAW:
            self.drops["bad_length"] += 1
            return None
        n = len(raw) - catalog.CRC_SIZE
        if zlib.crc32(memoryview(raw)[:n]) != _CRC.unpack_from(raw, n)[0]:
            self.drops["bad_crc"] += 1
            return None
        spec = SPECS.get(raw[0])
        if spec is None:
            self.drops["unknown_type"] += 1
            return None
        try:
            msg = parse_payload(raw[:n])
        except ProtocolError:
            self.drops["bad_length"] += 1
            return None
        self.frames += 1
        return msg


def check_hello(hello: Message, host_major: int = catalog.PROTOCOL_MAJOR) -> None:
    """Refuse a HELLO or HELLO_REPLY from another protocol major version, naming both."""
    if hello.name not in ("HELLO", "HELLO_REPLY"):
        raise ProtocolError("expected HELLO or HELLO_REPLY, got %s" % hello.name)
    if hello.proto_major != host_major:
        peer = "the board" if hello.name == "HELLO_REPLY" else "the host"
        raise ProtocolError(
            "protocol version mismatch: %s speaks %d.%d, this side speaks %d.%d; "
            "flash matching firmware with `dexlink flash`"
            % (peer, hello.proto_major, hello.proto_minor, host_major, catalog.PROTOCOL_MINOR)
        )


def mode_name(mode: int | None) -> str:
    """A board mode's name from the catalog ("TELEOP"); "mode 7" for a mode this host does
    not know (a newer board), "?" before the board has said."""
    if mode is None:
        return "?"
    return catalog.MODE_NAMES[mode] if 0 <= mode < len(catalog.MODE_NAMES) else "mode %d" % mode
