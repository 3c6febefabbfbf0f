"""Fuzz the firmware's command path with atheris: the shared dexproto.frame.FrameReader
and the loop's command dispatch (dexfw.loop.Firmware, real modules) on the simulated rig
(vmachine, manual clock), all under CPython, the hand in HOST mode, held still.

    .venv/bin/python tests/fuzz/fuzz_firmware.py -max_total_time=60
    make fuzz FUZZ_TARGET=firmware FUZZ_SECONDS=60

Inputs are read as fuzz_decoder.py reads them (first byte: raw line bytes, or payloads
framed with a correct CRC so the fuzzer reaches the type, length and value checks).
Invariants checked on every input:
- the loop never raises, and never writes a frame the host cannot decode;
- every good frame the board's reader passed gets exactly one answer (ACK, NACK or its
  reply);
- when no frame passed the reader's CRC and length checks, nothing about the hand
  changed: servo goals, host targets, mode, torque, loop config, joint calibration.
After an input whose frames did change things, the hand is put back (a new session).
"""
from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "protocol"),
          os.path.join(ROOT, "host", "dexlink", "sim", "board"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from fuzz_decoder import run_fuzzer, wire_of  # noqa: E402  (same input format)
from fuzz_decoder import seeds as decoder_seeds

PIECE = 1024  # bytes fed per loop cycle: what the loop reads in one (4 reads of 256)
NOT_ANSWERS = ("TELEMETRY", "RAW_SAMPLE", "FAULT", "LOG")  # sent on their own account


class Rig:
    """The firmware on the simulated rig, in HOST mode, holding the hand still."""

    def __init__(self):
        import vmachine
        import vworld
        from dexfw import build
        from dexfw.bufconsole import BufferConsole
        from dexfw.loop import Firmware

        from dexlink.hwconfig import compile_config, dumps

        cfg = json.loads(dumps(compile_config(os.path.join(ROOT, "hardware", "hands", "iso16.toml"),
                                              "virtual")))
        cfg["loop"]["watchdog_ms"] = 60000  # manual clock: long inputs must not trip it
        vworld.manual_clock()
        vmachine.load_rig(cfg)
        encoders, servos = build.build(vmachine, cfg)
        self.console = BufferConsole(rx_size=2 * PIECE)
        self.make = lambda: Firmware(vmachine, self.console, cfg, encoders, servos, 0, b"virtual")
        self.fw = None
        self.settle()

    def state(self):
        fw = self.fw
        jm = fw.jm
        return (bytes(jm.servo_goal), bytes(jm.host), bytes(jm.goal), fw.mode, fw.torque_on,
                fw.running, fw.hz, fw.decimation, fw.watchdog_ms, fw.watchdog_action,
                tuple(jm.joint_values(i) for i in range(jm.n)))

    def settle(self):
        """A fresh firmware (as after a reset) in HOST mode, holding the hand where it is:
        what an input changed (config, calibration, mode) is gone."""
        if self.fw is not None:
            self.fw.stop()
        fw = self.fw = self.make()
        while not fw.set_mode(2):  # (servo positions read back first)
            fw.run(2)
        fw.run(2)
        self.console.take()
        self.base = self.state()

    def feed(self, wire: bytes) -> bytes:
        """The wire bytes, a piece per cycle, then a 0x00; what the firmware wrote."""
        fw = self.fw
        for i in range(0, len(wire), PIECE):
            self.console.feed(wire[i:i + PIECE])
            fw.running = True  # REPL stops run(): the next piece is the next session's
            fw.run(1)
        self.console.feed(b"\x00")
        fw.running = True
        fw.run(2)
        return self.console.take()


_rig = None


def check(data: bytes) -> int:
    """Run one input through the firmware and assert the invariants; the good frames in it."""
    global _rig
    from dexproto.stream import StreamDecoder

    if _rig is None:
        _rig = Rig()
    rig = _rig
    wire, _ = wire_of(data)
    reader = rig.fw.link.reader
    good_before = reader.frames
    out = rig.feed(wire)
    good = (reader.frames - good_before) & 0x3FFFFFFF
    decoder = StreamDecoder()
    sent = decoder.feed(out)
    assert decoder.dropped == 0 and rig.console.tx_overflow == 0, "the firmware wrote a bad frame"
    answers = [m for m in sent if m.name not in NOT_ANSWERS]
    assert len(answers) == good, "%d good frames, %d answers: %r" % (good, len(answers), answers)
    if rig.state() != rig.base:
        assert good, "the hand changed on input %r with no frame passing the checks" % data
        rig.settle()
    return good


def seeds() -> list[bytes]:
    return decoder_seeds()


def main(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        import dexfw.config  # noqa: F401
        import dexfw.joints  # noqa: F401
        import dexfw.link  # noqa: F401
        import dexfw.loop  # noqa: F401
        import dexfw.mapping  # noqa: F401

        import dexproto.catalog  # noqa: F401
        import dexproto.cobsbuf  # noqa: F401
        import dexproto.crcbuf  # noqa: F401
        import dexproto.frame  # noqa: F401
    run_fuzzer(argv, check, seeds(), "firmware")


if __name__ == "__main__":
    main(sys.argv)
