"""Every file that runs on a board precompiles with mpy-cross for each board's
architecture (armv6m: RP2040, armv7m: RP2350, xtensawin: ESP32-S3, armv7emdp: the
Cortex-M7 boards, Teensy 4.1 and NUCLEO-H743ZI), viper included; and
viper code sits only in the modules made for it (docs/decisions.md), so that a port
without the viper emitter still compiles every other file.

Board files: firmware/main.py, firmware/dexfw/**.py (drivers too) and the protocol
package minus the host-only stream.py.
"""
from __future__ import annotations

import ast
import subprocess

import pytest

from conftest import MPY_CROSS, ROOT
from support.viper import VIPER_MODULES

pytestmark = pytest.mark.micropython

ARCHES = ("armv6m", "armv7m", "armv7emdp", "xtensawin")
HOST_ONLY = {"stream.py"}
NATIVE_DECORATORS = {"viper", "native", "asm_thumb", "asm_xtensa"}


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


def test_every_board_architecture_is_compiled_here():
    from dexlink import hwconfig
    arches = {hwconfig.load_board(name)["arch"]
              for name in hwconfig.shipped_names(hwconfig.BOARDS)} - {"none"}
    assert arches <= set(ARCHES) and "armv7emdp" in arches


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


def native_functions(path):
    """Names of the functions of a file decorated @micropython.viper (or native, asm_*)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                if (isinstance(d, ast.Attribute) and isinstance(d.value, ast.Name)
                        and d.value.id == "micropython" and d.attr in NATIVE_DECORATORS):
                    found.append(node.name)
    return found


def test_viper_code_lives_only_in_the_viper_modules():
    holders = {p.relative_to(ROOT).as_posix() for p in board_files() if native_functions(p)}
    assert holders == VIPER_MODULES


def test_the_viper_scan_sees_inline_viper(tmp_path):
    """The scan can fail: a viper function inside an ordinary module (in a try, as the
    old mapping.py had it) is found."""
    src = tmp_path / "m.py"
    src.write_text("try:\n    import micropython\n\n    @micropython.viper\n"
                   "    def f(p: ptr8) -> int:\n        return p[0]\nexcept SyntaxError:\n"
                   "    pass\n")
    assert native_functions(src) == ["f"]


def test_without_a_native_emitter_only_the_viper_modules_fail(tmp_path):
    """mpy-cross without -march has no native emitter, like a port built without viper:
    it refuses a file holding a viper function whole (SyntaxError), whatever try/except
    surrounds it. Every other board file must compile there; the viper modules must not
    (which also shows this check would catch viper code anywhere else)."""
    refused = {}
    for src in board_files():
        out = tmp_path / (src.stem + ".mpy")
        proc = subprocess.run([str(MPY_CROSS), "-o", str(out), str(src)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            refused[src.relative_to(ROOT).as_posix()] = proc.stderr.strip()
    assert set(refused) == VIPER_MODULES, refused
    assert all("SyntaxError" in err for err in refused.values()), refused
