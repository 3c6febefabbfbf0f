"""The driver tests' rig: every driver family on vmachine's simulated buses, and `mp`, which
runs a script over it under the real MicroPython interpreter."""
from __future__ import annotations

import json

from conftest import ROOT, run_micropython

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"

# A small rig with every driver family, in the compiled-config shape (docs/interfaces.md).
RIG = {
    "board": {"buses": {
        "i2c0": {"kind": "i2c", "id": 0}, "i2c1": {"kind": "i2c", "id": 1},
        "spi0": {"kind": "spi", "id": 0, "cs": 17},
        "uart0": {"kind": "uart", "id": 0}, "uart1": {"kind": "uart", "id": 1}}},
    "joints": [{"name": "index_%d" % i, "finger": "index", "min_cdeg": -1000,
                "max_cdeg": 9000, "zero_turn16": 1000 * i, "direction": -1 if i % 2 else 1,
                "scale_q12": 4096} for i in range(8)],
    "encoders": [
        {"cls": "AS5600Mux", "bus": "i2c0", "joints": [0, 1, 2],
         "args": {"mux_addr": 112, "channels": [0, 1, 2]}},
        {"cls": "AS5048AChain", "bus": "spi0", "joints": [3, 4, 5]},
        {"cls": "MT6701Mux", "bus": "i2c1", "joints": [6, 7],
         "args": {"mux_addr": 113, "channels": [4, 5]}}],
    "servos": [
        {"cls": "FeetechBus", "bus": "uart1", "joints": [0, 1, 2, 3], "args": {"ids": [1, 2, 3, 4]}},
        {"cls": "DynamixelBus", "bus": "uart0", "joints": [4, 5, 6], "args": {"ids": [7, 8, 9]}},
        {"cls": "PCA9685Servos", "bus": "i2c1", "joints": [7], "args": {"addr": 64, "channels": [3]}}],
}

PRELUDE = """
import array, gc, json
import vfaults, vmachine, vworld
from dexproto import catalog as C
from dexfw.drivers.as5600 import AS5600Mux
from dexfw.drivers.as5048a import AS5048AChain
from dexfw.drivers.mt6701 import MT6701Mux
from dexfw.drivers.feetech import FeetechBus
from dexfw.drivers.dynamixel import DynamixelBus
from dexfw.drivers.pca9685 import PCA9685Servos
from dexfw.drivers import busbytes
vworld.manual_clock()
vmachine.load_rig(json.loads(RIG_JSON))
op = vworld.operator
i2c0 = vmachine.I2C(0, 5, 4, 400000)
i2c1 = vmachine.I2C(1, 7, 6, 400000)
spi0 = vmachine.SPI(0, 18, 19, 16, 10000000)
cs = vmachine.Pin(17, vmachine.Pin.OUT)
uart0 = vmachine.UART(0, 1000000, 0, 1)
uart1 = vmachine.UART(1, 1000000, 8, 9)
raw = array.array("H", [0] * 8)
status = bytearray(8)
goal = array.array("h", [0] * 8)
present = array.array("h", [0] * 8)

def turn16_of(cdeg, j):
    # What joint j's encoder reads at cdeg (the rig's calibration, docs/interfaces.md).
    d = (-1 if j % 2 else 1) * cdeg * 65536 // 36000
    return (1000 * j + d) & 0xFFFF

def servo_counts(cdeg):
    return 2048 + (cdeg * 4096 + 18000) // 36000

def servo_cdeg(counts):
    return ((counts - 2048) * 36000 + 2048) // 4096

def run(drivers, cycles, encoders=()):
    for _ in range(cycles):
        for e in encoders:
            e.sample(raw, status)
        for d in drivers:
            d.write_goals(goal)
            d.poll(present, status)
        vworld.advance_us(1000)

def out(**kw):
    print("RESULT " + json.dumps(kw))
""".replace("RIG_JSON", repr(json.dumps(RIG)))


def mp(body: str) -> dict:
    """Run PRELUDE + body under MicroPython; return the dict the body passed to out()."""
    proc = run_micropython(PRELUDE + body, paths=[SIM_BOARD])
    for line in proc.stdout.decode().splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError("no RESULT line:\n" + proc.stdout.decode())
