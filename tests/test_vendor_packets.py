"""Our Feetech and Dynamixel packets, byte for byte, against the vendors' own SDKs.

The drivers run under the real MicroPython interpreter over a UART that records what is
written; the SDKs (feetech-servo-sdk's scservo_sdk, dynamixel-sdk) build the same commands
through their PortHandler, whose serial port is a pyserial loop:// port we read back.
The register tables the drivers and the simulated servos share (feetech_table,
dynamixel_table) are checked against the SDKs' protocol constants and the manuals'
addresses these packets use.
"""
from __future__ import annotations

import json

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs
import serial

from conftest import run_micropython

pytestmark = pytest.mark.micropython

IDS = (1, 5, 12)
GOALS_CDEG = (-4500, 0, 9000)
# The registers the packets below address, (address, size) as the vendors' manuals give
# them (the SDKs carry no control tables): the Feetech STS/SMS memory table, the ROBOTIS
# e-Manual's X-series control table.
STS_REGISTERS = {"Return_Delay_Time": (7, 1), "Torque_Enable": (40, 1),
                 "Goal_Position": (42, 2), "Lock": (55, 1), "Present_Position": (56, 2),
                 "Present_Velocity": (58, 2), "Present_Load": (60, 2)}
X_REGISTERS = {"Return_Delay_Time": (9, 1), "Torque_Enable": (64, 1),
               "Goal_Position": (116, 4), "Present_Current": (126, 2),
               "Present_Velocity": (128, 4), "Present_Position": (132, 4)}


TABLE_NAMES = ("BROADCAST_ID", "MAX_ID", "INST_PING", "INST_READ", "INST_WRITE",
               "INST_SYNC_READ", "INST_SYNC_WRITE", "CONTROL_TABLE", "EEPROM_END",
               "RESOLUTION", "MODEL_NUMBERS")


def board_table(module: str) -> dict:
    """A vendor table module as the board imports it (under MicroPython), as JSON."""
    out = run_micropython("import json\nfrom dexfw.drivers import %s as t\n"
                          "print(json.dumps({n: getattr(t, n) for n in %r}))\n"
                          % (module, TABLE_NAMES)).stdout.decode()
    return json.loads(out.strip().splitlines()[-1])


def board_table_status() -> int:
    out = run_micropython("from dexfw.drivers import dynamixel_table as t\n"
                          "print(t.INST_STATUS)\n").stdout.decode()
    return int(out.split()[-1])


def test_register_tables_match_the_sdks_and_the_manuals():
    sts, x = board_table("feetech_table"), board_table("dynamixel_table")
    for table, sdk in ((sts, scs), (x, dxl)):
        for name in TABLE_NAMES[:7]:
            assert table[name] == getattr(sdk, name), (sdk.__name__, name)
    assert board_table_status() == dxl.INST_STATUS
    for table, manual in ((sts, STS_REGISTERS), (x, X_REGISTERS)):
        regs = {name: tuple(v) for name, v in table["CONTROL_TABLE"].items()}
        assert {name: regs[name] for name in manual} == manual
        # Registers never overlap, and the EEPROM area ends where the RAM area starts.
        spans = sorted(regs.values())
        assert all(a + n <= b for (a, n), (b, _) in zip(spans, spans[1:]))
        assert regs["Torque_Enable"][0] == table["EEPROM_END"]
        assert set(table["MODEL_NUMBERS"]) == set(table["RESOLUTION"])
    assert sts["MODEL_NUMBERS"]["sts3215"] == [777]
    assert 1020 in x["MODEL_NUMBERS"]["xm430"]  # XM430-W350 (e-Manual)


def counts(cdeg: int) -> int:
    return 2048 + (cdeg * 4096 + 18000) // 36000


def capture_micropython(body: str) -> list[str]:
    """Run body with `uart`, a recording UART; return the packets written, as hex.

    The UART answers only what `reply(packet)` (body may define it) returns bytes for.
    """
    src = """
import json, time
def reply(buf):
    return None
class RecordingUART:
    def __init__(self):
        self.packets = []
        self.pending = b""
    def write(self, buf):
        self.packets.append(bytes(buf).hex())
        self.pending += bytes(reply(buf) or b"")
        return len(buf)
    def any(self):
        return len(self.pending)
    def readinto(self, buf, n):
        n = min(n, len(self.pending))
        buf[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n
uart = RecordingUART()
present = [0] * 3
status = bytearray(3)
""" + body + "\nprint('PACKETS ' + json.dumps(uart.packets))\n"
    out = run_micropython(src).stdout.decode()
    line = [ln for ln in out.splitlines() if ln.startswith("PACKETS ")][0]
    return json.loads(line[8:])


class LoopPort:
    """An SDK PortHandler on pyserial's loop://: what the SDK writes comes back to us."""

    def __init__(self, port_handler_class):
        self.port = port_handler_class("loop://")
        self.port.ser = serial.serial_for_url("loop://", timeout=0)
        self.port.is_open = True
        self.packets: list[str] = []

    def take(self):
        self.port.is_using = False  # a *Tx call leaves the port busy awaiting an answer
        data = self.port.ser.read(self.port.ser.in_waiting)
        assert data, "the SDK wrote nothing"
        self.packets.append(data.hex())


# At setup each servo is asked for its Return_Delay_Time; the UART answers 250 (the
# factory default) for the first servo only, so only that one is written, and the others
# (silent) are waited for and left alone. The read-back answers come from the driver
# module's own packet builder: their parsing is checked against the simulated servos.
DRIVER_SCRIPT = """
from array import array
from dexfw.drivers import %(module)s
from dexfw.drivers.%(module)s import %(cls)s
def reply(buf):
    if %(is_delay_read)s and buf[%(id_at)d] == %(first_id)d:
        return %(module)s.packet(%(first_id)d, %(answer_inst)s, %(answer_params)s)
bus = %(cls)s(uart, ids=%(ids)r, joints=(0, 1, 2), timeout_polls=1, clock=time)
bus.torque(1)
bus.torque(0)
bus.write_goals(array("h", %(goals)r))  # the loop's goals are an array, as here
for _ in range(3):
    bus.poll(present, status)
group = %(cls)s(uart, ids=%(ids)r, joints=(0, 1, 2), read_group=2, timeout_polls=1, clock=time)
for _ in range(2):
    group.poll(present, status)
"""
FEETECH_SCRIPT = DRIVER_SCRIPT % {
    "module": "feetech", "cls": "FeetechBus", "ids": IDS, "goals": GOALS_CDEG,
    "is_delay_read": "buf[4] == 0x02 and buf[5] == 7", "id_at": 2, "first_id": IDS[0],
    "answer_inst": "0", "answer_params": "(250,)"}  # ERR 0, data 250
DYNAMIXEL_SCRIPT = DRIVER_SCRIPT % {
    "module": "dynamixel", "cls": "DynamixelBus", "ids": IDS, "goals": GOALS_CDEG,
    "is_delay_read": "buf[7] == 0x02 and buf[8] == 9 and buf[9] == 0", "id_at": 4,
    "first_id": IDS[0], "answer_inst": "0x55", "answer_params": "(0, 250)"}  # STATUS, ERR 0


def test_feetech_packets_match_scservo_sdk():
    ours = capture_micropython(FEETECH_SCRIPT)

    lp = LoopPort(scs.PortHandler)
    ph = scs.PacketHandler(0)  # 0: STS, little-endian

    def init():  # Return_Delay_Time read back; 0 written to EEPROM where it is not
        for sid in IDS:
            ph.readTx(lp.port, sid, 7, 1)
            lp.take()
            if sid == IDS[0]:  # unlock, write, lock
                for addr, value in ((55, 0), (7, 0), (55, 1)):
                    ph.write1ByteTxOnly(lp.port, sid, addr, value)
                    lp.take()

    def sync_write(addr, length, data_by_id):
        group = scs.GroupSyncWrite(lp.port, ph, addr, length)
        for sid, data in data_by_id:
            group.addParam(sid, data)
        group.txPacket()
        lp.take()

    def sync_read(ids):
        group = scs.GroupSyncRead(lp.port, ph, 56, 6)
        for sid in ids:
            group.addParam(sid)
        group.txPacket()
        lp.take()

    init()
    sync_write(40, 1, [(sid, [1]) for sid in IDS])
    sync_write(40, 1, [(sid, [0]) for sid in IDS])
    sync_write(42, 2, [(sid, [scs.SCS_LOBYTE(counts(g)), scs.SCS_HIBYTE(counts(g))])
                       for sid, g in zip(IDS, GOALS_CDEG)])
    for sid in IDS:  # READ of present position, speed, load: one servo per poll
        ph.readTx(lp.port, sid, 56, 6)
        lp.take()
    init()
    sync_read(IDS[0:2])  # SYNC_READ of two servos per poll, wrapping round the bus
    sync_read((IDS[2], IDS[0]))

    assert ours == lp.packets


def test_dynamixel_packets_match_dynamixel_sdk():
    ours = capture_micropython(DYNAMIXEL_SCRIPT)

    lp = LoopPort(dxl.PortHandler)
    ph = dxl.PacketHandler(2.0)

    def init():  # Return_Delay_Time (9) read back; 0 written where it is not
        for sid in IDS:
            ph.readTx(lp.port, sid, 9, 1)
            lp.take()
            if sid == IDS[0]:
                ph.write1ByteTxOnly(lp.port, sid, 9, 0)
                lp.take()

    def sync_write(addr, length, data_by_id):
        group = dxl.GroupSyncWrite(lp.port, ph, addr, length)
        for sid, data in data_by_id:
            group.addParam(sid, data)
        group.txPacket()
        lp.take()

    def sync_read(ids):
        group = dxl.GroupSyncRead(lp.port, ph, 126, 10)
        for sid in ids:
            group.addParam(sid)
        group.txPacket()
        lp.take()

    def le32(v):
        return [dxl.DXL_LOBYTE(dxl.DXL_LOWORD(v)), dxl.DXL_HIBYTE(dxl.DXL_LOWORD(v)),
                dxl.DXL_LOBYTE(dxl.DXL_HIWORD(v)), dxl.DXL_HIBYTE(dxl.DXL_HIWORD(v))]

    init()
    sync_write(64, 1, [(sid, [1]) for sid in IDS])
    sync_write(64, 1, [(sid, [0]) for sid in IDS])
    sync_write(116, 4, [(sid, le32(counts(g))) for sid, g in zip(IDS, GOALS_CDEG)])
    for sid in IDS:  # READ of current, velocity, position: one servo per poll
        ph.readTx(lp.port, sid, 126, 10)
        lp.take()
    init()
    sync_read(IDS[0:2])
    sync_read((IDS[2], IDS[0]))

    assert ours == lp.packets


def test_dynamixel_byte_stuffing_and_crc_match_dynamixel_sdk():
    """A WRITE whose data holds the header pattern FF FF FD: stuffed and CRC'd alike.

    The SDK's own stuffer and CRC (addStuffing, updateCRC) are the reference. Its
    txPacket() cannot be: it drops addStuffing's result when the length grows (the new
    list is returned, not written back), so it sends such packets unstuffed.
    """
    payloads = [[0xFF, 0xFF, 0xFD, 0x01], [0x00, 0xFF, 0xFF, 0xFD, 0xFF, 0xFF, 0xFD],
                [0xFF, 0xFF, 0xFF, 0xFD, 0xFD], [0x01, 0x02, 0x03]]
    ours = capture_micropython("""
from dexfw.drivers import dynamixel
for data in %r:
    uart.write(dynamixel.packet(3, dynamixel.INST_WRITE, [0x08, 0x02] + data))
""" % payloads)
    ph = dxl.Protocol2PacketHandler()
    theirs = []
    for data in payloads:
        params = [0x08, 0x02] + data
        length = len(params) + 3  # INST, params, CRC
        packet = [0xFF, 0xFF, 0xFD, 0x00, 3, length & 0xFF, length >> 8, dxl.INST_WRITE]
        packet += params + [0, 0]
        packet = ph.addStuffing(packet)
        crc = ph.updateCRC(0, packet, len(packet) - 2)
        packet[-2:] = [crc & 0xFF, crc >> 8]
        theirs.append(bytes(packet).hex())
    assert ours == theirs
    assert ours[0].count("fffffdfd") == 1 and ours[1].count("fffffdfd") == 2
