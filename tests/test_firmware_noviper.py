"""The firmware on a port without the viper emitter, under the real MicroPython binary.

Such a port refuses, at compile time, any module holding a viper function. Here every
viper module (tests/test_mpy_cross.py VIPER_MODULES) is replaced by a copy whose
decorators name an emitter the interpreter does not have: the real compiler then refuses
it whole with the same SyntaxError. The plain-Python twins must notice by themselves,
and the whole loop must run on the simulated rig with them: servos read back through the
plain checksums and CRCs, telemetry framed by the plain COBS. (That each plain function
gives the viper one's results is tested beside each: test_firmware.py, test_drivers.py,
test_protocol_micropython.py.)
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import ROOT, run_micropython
from dexlink.hwconfig import dumps
from dexproto import catalog as C
from dexproto.stream import StreamDecoder, encode, make
from support.firmware_families import FAMILIES
from support.viper import VIPER_MODULES

pytestmark = pytest.mark.micropython

SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"

RUN = r"""
import json, vmachine, vworld
failed = []
for name in ("dexproto.viperloops", "dexfw.mapping_viper", "dexfw.drivers.busbytes_viper",
             "dexfw.trajectory_viper"):
    try:
        __import__(name)
    except SyntaxError:
        failed.append(name)
from dexfw import build, mapping, trajectory
from dexfw.bufconsole import BufferConsole
from dexfw.drivers import busbytes
from dexfw.loop import Firmware
from dexproto import cobsbuf
vworld.manual_clock()
cfg = json.loads(%r)
vmachine.load_rig(cfg)
enc, srv = build.build(vmachine, cfg)
con = BufferConsole()
fw = Firmware(vmachine, con, cfg, enc, srv, 0, b"virtual")
fw.run(300)
con.feed(bytes.fromhex(%r))
fw.run(5)
while not fw.set_mode(1):
    fw.run(1)
fw.run(500)
con.feed(bytes.fromhex(%r))
fw.run(2)
plain = {"map_exo_of": mapping.map_exo_of is mapping.map_exo_of_py,
         "pack_joints": mapping.pack_joints is mapping.pack_joints_py,
         "crc16": busbytes.crc16 is busbytes.crc16_py,
         "stuff": busbytes.stuff is busbytes.stuff_py,
         "sum_bytes": busbytes.sum_bytes is busbytes.sum_bytes_py,
         "cobs": cobsbuf.encode_into is cobsbuf.encode_into_py,
         "blend": trajectory.blend is trajectory.blend_py}
print("RESULT " + json.dumps({"failed": failed, "plain": plain,
      "viper": [mapping.VIPER, busbytes.VIPER, cobsbuf.VIPER, trajectory.VIPER],
      "tx": con.take().hex()}))
"""


@pytest.fixture(scope="module")
def no_viper_port(tmp_path_factory):
    """The board's files with every viper module refused by the compiler."""
    root = tmp_path_factory.mktemp("noviper")
    shutil.copytree(ROOT / "protocol" / "dexproto", root / "dexproto")
    shutil.copytree(ROOT / "firmware" / "dexfw", root / "dexfw")
    for rel in VIPER_MODULES:
        path = root / rel.split("/", 1)[1]
        text = path.read_text()
        assert "@micropython.viper" in text
        path.write_text(text.replace("@micropython.viper", "@micropython.no_such_emitter"))
    return root


def run(family, paths):
    cfg = FAMILIES[family]()
    hello = encode(make("HELLO", proto_major=C.PROTOCOL_MAJOR, proto_minor=0), seq=1).hex()
    stats = encode(make("GET_STATS"), seq=2).hex()
    proc = run_micropython(RUN % (dumps(cfg), hello, stats), paths=[*paths, SIM_BOARD],
                           timeout=120)
    line = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("RESULT ")][0]
    return json.loads(line[len("RESULT "):])


def frames(tx_hex):
    return StreamDecoder().feed(bytes.fromhex(tx_hex))


@pytest.mark.parametrize("family", ["as5600+feetech", "as5048a+dynamixel+coupling"])
def test_plain_fallbacks_are_chosen_by_themselves_and_run_the_loop(family, no_viper_port):
    viper = run(family, [])
    plain = run(family, [no_viper_port])
    assert viper["failed"] == [] and viper["viper"] == [True, True, True, True]
    assert not any(viper["plain"].values()), viper["plain"]
    assert plain["failed"] == ["dexproto.viperloops", "dexfw.mapping_viper",
                               "dexfw.drivers.busbytes_viper", "dexfw.trajectory_viper"]
    assert plain["viper"] == [False, False, False, False]
    assert all(plain["plain"].values()), plain["plain"]
    for result, cap in ((plain, 0), (viper, C.CAP_VIPER)):
        got = frames(result["tx"])
        hello = [m for m in got if m.name == "HELLO_REPLY"][0]
        assert hello.capabilities & C.CAP_VIPER == cap
        telemetry = [m for m in got if m.name == "TELEMETRY"]
        assert len(telemetry) >= 50 and telemetry[-1].mode == C.MODE_TELEOP
        # Every servo answered, through the plain checksums / CRCs: positions known.
        assert all(status == 0 for _, _, _, status in telemetry[-1].items)
        assert C.PRESENT_UNKNOWN not in telemetry[-1].column("present_cdeg")
        stats = [m for m in got if m.name == "STATS"][0]
        assert (stats.servo_timeouts, stats.servo_bad_checksums, stats.rx_bad_crc) == (0, 0, 0)
        assert not [m for m in got if m.name == "FAULT"]


def test_the_refused_module_is_a_compile_error(no_viper_port):
    """The stand-in fails the way a port without viper does: the compiler refuses it."""
    text = (no_viper_port / "dexfw" / "mapping_viper.py").read_text()
    assert not re.search(r"@micropython\.viper\b", text)
    proc = run_micropython("import dexfw.mapping_viper\n", paths=[no_viper_port], check=False)
    assert b"SyntaxError" in proc.stderr + proc.stdout
