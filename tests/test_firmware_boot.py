"""Boot on the real boards' HAL (dexfw.hal_machine) under the MicroPython interpreter:
main.py -> dexfw.app.run() with the host link on the real sys.stdin / sys.stdout.

The Unix port's `machine` has no Pin/I2C, so a recording stand-in is put in
sys.modules["machine"]; select.poll on stdin, the time module and micropython.kbd_intr
are the interpreter's own.
"""
from __future__ import annotations

import os

import pytest

from conftest import ROOT, run_micropython
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, make

pytestmark = pytest.mark.micropython

FAKE_MACHINE = '''
import sys
class _Machine:
    class Pin:
        OUT = 1
        def __init__(self, n, mode=-1):
            self.n = n
    class I2C:
        def __init__(self, id, **kw):
            self.args = (id, kw["scl"].n, kw["sda"].n, kw["freq"])
    class UART:
        def __init__(self, id, **kw):
            self.args = (id, kw["baudrate"], kw["tx"].n, kw["rx"].n, kw["timeout"])
sys.modules["machine"] = _Machine
'''


def test_hal_machine_wraps_machine_and_polls_stdin():
    body = FAKE_MACHINE + '''
import dexfw.hal_machine as hal
print(hal.I2C(1, 7, 6, 400000).args, hal.UART(1, 1000000, 8, 9).args)
c = hal.Console()
buf = bytearray(8)
print(c.readinto(buf), bytes(buf[:3]))
print(c.readinto(buf))
'''
    out = run_micropython(body, stdin=b"abc").stdout.decode().splitlines()
    assert out == ["(1, 7, 6, 400000) (1, 1000000, 8, 9, 0)", "3 b'abc'", "0"]


@pytest.mark.skipif(os.path.exists("/dexlink.json") or os.path.exists("/safeboot"),
                    reason="this machine has a board filesystem at /")
def test_main_without_config_answers_faults_and_returns_to_the_repl():
    """No /dexlink.json: the board idles unconfigured, says why, answers HELLO, and a
    REPL message ends the firmware (main.py returns)."""
    main_py = (ROOT / "firmware" / "main.py").read_text()
    stdin = (encode(make("HELLO", proto_major=C.PROTOCOL_MAJOR, proto_minor=0), seq=1)
             + encode(make("SET_MODE", mode=C.MODE_TELEOP), seq=2)
             + encode(make("REPL"), seq=3))
    proc = run_micropython(FAKE_MACHINE + main_py, stdin=stdin, timeout=30)
    out = proc.stdout
    assert out.endswith(b"dexfw: stopped, REPL\r\n")
    msgs = StreamDecoder().feed(out[:out.rindex(b"\x00") + 1])
    names = [m.name for m in msgs]
    assert names[0] == "LOG" and "/dexlink.json: cannot be read" in msgs[0].text
    assert "FAULT" in names and [m for m in msgs if m.name == "FAULT"][0].code == C.FAULT_CONFIG
    hello = [m for m in msgs if m.name == "HELLO_REPLY"][0]
    assert hello.n_joints == 0
    nack = [m for m in msgs if m.name == "NACK"][0]
    assert (nack.acked_seq, nack.error) == (2, C.ERR_BAD_MODE)
    assert [m.acked_type for m in msgs if m.name == "ACK"] == [C.REPL]
