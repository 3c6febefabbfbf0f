"""Every file that runs on a board precompiles with mpy-cross for each board's
architecture (armv6m: RP2040, armv7m: RP2350, xtensawin: ESP32-S3), viper included.

Board files: firmware/main.py, firmware/dexfw/**.py (drivers too) and the protocol
package minus the host-only stream.py.
"""
from __future__ import annotations

import subprocess

import pytest

from conftest import MPY_CROSS, ROOT

ARCHES = ("armv6m", "armv7m", "xtensawin")
HOST_ONLY = {"stream.py"}


def board_files():
    files = [ROOT / "firmware" / "main.py"]
    files += sorted((ROOT / "firmware" / "dexfw").rglob("*.py"))
    files += sorted(p for p in (ROOT / "protocol" / "dexproto").glob("*.py")
                    if p.name not in HOST_ONLY)
    return files


def test_the_board_file_list_is_complete():
    names = {p.relative_to(ROOT).as_posix() for p in board_files()}
    for must in ("firmware/main.py", "firmware/dexfw/loop.py", "firmware/dexfw/mapping.py",
                 "firmware/dexfw/hal_machine.py", "protocol/dexproto/frame.py"):
        assert must in names
    assert "protocol/dexproto/stream.py" not in names


@pytest.mark.parametrize("arch", ARCHES)
def test_board_files_compile(arch, tmp_path):
    failures = []
    for src in board_files():
        out = tmp_path / (src.stem + ".mpy")
        proc = subprocess.run([str(MPY_CROSS), "-march=" + arch, "-o", str(out), str(src)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or not out.exists():
            failures.append("%s: %s" % (src.relative_to(ROOT), proc.stderr.strip()))
    assert not failures, "\n".join(failures)


def test_mpy_cross_rejects_bad_viper(tmp_path):
    """The check can fail: viper code with a type error is refused for a native arch."""
    bad = tmp_path / "bad.py"
    bad.write_text("import micropython\n@micropython.viper\ndef f(p: ptr8) -> int:\n"
                   "    return p + 'x'\n")
    proc = subprocess.run([str(MPY_CROSS), "-march=armv6m", "-o", str(tmp_path / "bad.mpy"),
                           str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
