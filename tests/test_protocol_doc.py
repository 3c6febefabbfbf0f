"""protocol/PROTOCOL.md cannot drift from the catalog: its tables are parsed and compared
with dexproto.catalog (and the drop reasons with dexproto.frame)."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT
from dexproto import catalog, frame, stream

DOC = (ROOT / "protocol" / "PROTOCOL.md").read_text()
C_TYPES = {"B": "u8", "b": "i8", "H": "u16", "h": "i16", "I": "u32", "i": "i32"}
ENUM_PREFIXES = {"MODE_": catalog, "WATCHDOG_": catalog, "ST_": catalog, "CAP_": catalog,
                 "POINTS_": catalog, "ERR_": catalog, "FAULT_": catalog, "LOG_": catalog, "DROP_": frame}


def section(text: str, heading: str) -> str:
    """The text under a heading line, up to the next heading of the same or higher level."""
    level = heading.split(" ")[0]
    start = text.index("\n" + heading + "\n") + len(heading) + 2
    stop = re.compile(r"^#{1,%d} " % len(level), re.M).search(text, start)
    return text[start:stop.start() if stop else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row in text, header and rule rows left out."""
    rows = []
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set(line) <= set("|-: "):
            continue  # the rule under a header
        if i + 1 < len(lines) and lines[i + 1].startswith("|") and set(lines[i + 1]) <= set("|-: "):
            continue  # a header
        rows.append(cells)
    return rows


def fmt_cell(fmt: str | None) -> str:
    return "`%s`" % fmt if fmt else "—"


def test_sizes_and_version():
    assert "Version **%d.%d**" % (catalog.PROTOCOL_MAJOR, catalog.PROTOCOL_MINOR) in DOC
    assert "`MAX_PAYLOAD` = %d bytes" % catalog.MAX_PAYLOAD in DOC
    assert "`MAX_FRAME` = %d bytes" % catalog.MAX_FRAME in DOC
    assert "MAX_PAYLOAD = %d bytes" % catalog.MAX_PAYLOAD in DOC  # the frame diagram
    assert "header  = type (u8) || seq (u16, little-endian)" in DOC
    assert catalog.HEADER_FORMAT == "<BH" and catalog.CRC_SIZE == 4


def test_units_table_is_the_catalogs():
    rows = table_rows(section(DOC, "## Units"))
    assert {r[0].strip("`_"): r[1] for r in rows} == catalog.UNITS


@pytest.mark.parametrize("prefix", sorted(ENUM_PREFIXES))
def test_every_constant_is_documented_with_its_value(prefix):
    module = ENUM_PREFIXES[prefix]
    documented = {}
    for cells in table_rows(DOC):
        m = re.fullmatch(r"`(%s\w+)`" % prefix, cells[0])
        if m and len(cells) >= 3:
            documented[m.group(1)] = int(cells[1], 0)
    actual = {name: getattr(module, name) for name in dir(module)
              if name.startswith(prefix) and isinstance(getattr(module, name), int)}
    assert actual, prefix
    assert documented == actual


def test_message_summary_table_is_the_catalog():
    rows = table_rows(section(DOC, "## Messages"))
    expect = []
    for s in stream.SPECS.values():
        n = str(s.head.size) + (" + %d·n" % s.item.size if s.item else "") \
            + (" + text" if s.tail_field else "")
        expect.append(["0x%02x" % s.type, s.name, catalog.DIRECTION_NAMES[s.direction],
                       fmt_cell(s.head.format if s.head.size else None),
                       fmt_cell(s.item.format if s.item else None), s.tail_field or "—", n])
    assert rows == expect


def expected_fields(s: stream.Spec) -> list[list[str]]:
    rows = [["head", f, C_TYPES[c], catalog.unit_of(f)]
            for f, c in zip(s.head_fields, s.head.format.lstrip("<"))]
    if s.item:
        rows += [["item", f, C_TYPES[c], catalog.unit_of(f)]
                 for f, c in zip(s.item_fields, s.item.format.lstrip("<"))]
    if s.tail_field:
        rows.append(["tail", s.tail_field, "text", ""])
    return rows


@pytest.mark.parametrize("name", list(stream.SPECS_BY_NAME))
def test_each_message_section_lists_its_fields(name):
    s = stream.SPECS_BY_NAME[name]
    fields_part = section(DOC, "## Fields of each message")
    heading = "### 0x%02x %s (%s)" % (s.type, s.name, catalog.DIRECTION_NAMES[s.direction])
    assert fields_part.count("\n" + heading + "\n") == 1, heading
    body = section(fields_part, heading)
    rows = [r[:4] for r in table_rows(body)]
    assert rows == expected_fields(s)
    assert ("No body." in body) == (not rows)
    assert s.summary in body


def test_no_section_for_a_message_that_does_not_exist():
    headings = re.findall(r"^### 0x([0-9a-f]{2}) (\w+) ", section(DOC, "## Fields of each message"), re.M)
    assert [(int(t, 16), n) for t, n in headings] == [
        (s.type, s.name) for s in stream.SPECS.values()
    ]


def test_the_parser_sees_a_drift():
    """A changed format, field or constant in the page is caught by the checks above."""
    drifted = DOC.replace("| item | exo_cdeg | i16 |", "| item | exo_cdeg | u16 |")
    body = section(
        section(drifted, "## Fields of each message"), "### 0x20 TELEMETRY (board->host)"
    )
    assert [r[:4] for r in table_rows(body)] != expected_fields(stream.SPECS_BY_NAME["TELEMETRY"])
    drifted = DOC.replace("| `ST_HELD` | 0x08 |", "| `ST_HELD` | 0x10 |")
    values = {c[0]: c[1] for c in table_rows(drifted) if c[0] == "`ST_HELD`"}
    assert int(values["`ST_HELD`"], 0) != catalog.ST_HELD
