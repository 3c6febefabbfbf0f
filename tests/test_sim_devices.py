"""The simulated rig of the virtual board, under the real MicroPython interpreter:
its clocks, the operator, the servos' dynamics, the chips' registers and the wiring."""
from __future__ import annotations

import ast
import json

import pytest

from conftest import ROOT, run_micropython
from dexlink import hwconfig
from support.drivers import RIG, SIM_BOARD, mp
from support.hands import ISO16

pytestmark = pytest.mark.micropython

HANDS = ROOT / "hardware" / "hands"


def run_sim(body: str, cwd_files: dict | None = None) -> dict:
    proc = run_micropython("import json\n" + body, paths=[SIM_BOARD])
    for line in proc.stdout.decode().splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise AssertionError("no RESULT line:\n" + proc.stdout.decode())


# ---- clocks ---------------------------------------------------------------------------

@pytest.mark.parametrize("ppm", [0, 500, -250, 100000])
def test_board_clock_runs_fast_or_slow_by_clock_ppm(ppm):
    r = mp("""
vfaults.clock_ppm = %d
t0 = vmachine.ticks_us()
for _ in range(2000):
    vworld.advance_us(1000)          # 2 s of world time, in small steps
    vmachine.ticks_us()
t1 = vmachine.ticks_us()
w0 = vworld.now_us()
vmachine.sleep_us(50000)             # 50 ms of board time
out(elapsed=vmachine.ticks_diff(t1, t0), slept=vworld.now_us() - w0)
""" % ppm)
    assert r["elapsed"] == 2000000 + 2 * ppm  # no rounding drift over 2000 steps
    assert abs(r["slept"] - 50000 * 1000000 / (1000000 + ppm)) <= 1


def test_ticks_wrap_like_a_board():
    r = mp("""
a = vmachine.TICKS_MAX - 10
b = vmachine.ticks_add(a, 25)
out(b=b, diff=vmachine.ticks_diff(b, a), back=vmachine.ticks_diff(a, b),
    period=vmachine.TICKS_PERIOD)
""")
    assert r["b"] == 14 and r["diff"] == 25 and r["back"] == -25
    assert r["period"] == 1 << 30


def test_real_clock_follows_the_interpreters_clock():
    r = run_sim("""
import time, vworld
t0 = time.ticks_us()
a = vworld.now_us()
time.sleep_ms(5)
b = vworld.now_us()
t1 = time.ticks_us()
print("RESULT " + json.dumps({"world": b - a, "real": time.ticks_diff(t1, t0)}))
""")
    assert 0 < r["world"] <= r["real"]  # bracketed by the interpreter's own clock


# ---- the operator -------------------------------------------------------------------------

OPERATOR = """
import vworld
from voperator import Operator, min_jerk_q16
vworld.manual_clock()
cfg = json.loads(%r)
def trajectory(seed, ms, step_ms=5, keep=True):
    op = Operator(cfg["joints"], seed)
    t0 = vworld.now_us()
    rows = []
    digest = 0
    for i in range(0, ms, step_ms):
        row = [op.angle_cdeg(j, t0 + i * 1000) for j in range(len(cfg["joints"]))]
        if keep:
            rows.append(row)
        for q in row:
            digest = (digest * 31 + q) & 0xFFFFFFF
    return rows if keep else digest
"""


def _hand_joints(name: str) -> list:
    from dexlink import hwconfig
    return hwconfig.compile_config(HANDS / (name + ".toml"), "virtual")


def test_operator_is_seeded_within_range_and_smooth():
    cfg = _hand_joints("iso16")
    r = run_sim(OPERATOR % json.dumps(cfg) + """
a = trajectory(7, 12000)
b = trajectory(7, 12000, keep=False)
c = trajectory(8, 12000, keep=False)
d = trajectory(7, 12000, keep=False)
print("RESULT " + json.dumps({"a": a, "same": b == d, "differs": b != c}))
""")
    joints = cfg["joints"]
    rows = r["a"]
    assert r["same"] and r["differs"]
    for row in rows:
        for j, q in enumerate(row):
            assert joints[j]["min_cdeg"] <= q <= joints[j]["max_cdeg"]
    # Minimum jerk: the speed peaks at 1.875 x the mean; over >= 0.5 s moves of at most the
    # joint's span, 5 ms steps stay well below span / 50.
    for prev, row in zip(rows, rows[1:]):
        for j in range(len(row)):
            span = joints[j]["max_cdeg"] - joints[j]["min_cdeg"]
            assert abs(row[j] - prev[j]) <= span * 1.875 * 5 / 500 + 1
    # ... and accelerations are small too: no step in speed.
    for p0, p1, p2 in zip(rows, rows[1:], rows[2:]):
        for j in range(len(p0)):
            span = joints[j]["max_cdeg"] - joints[j]["min_cdeg"]
            assert abs((p2[j] - p1[j]) - (p1[j] - p0[j])) <= span / 200 + 2


def _flexion(cfg, row, finger):
    """Mean flexion (0..1 of range) of a finger's non-abduction joints."""
    vals = []
    for j, q in zip(cfg["joints"], row):
        if j["finger"] == finger and not any(w in j["name"] for w in ("abd", "rot")):
            vals.append((q - j["min_cdeg"]) / (j["max_cdeg"] - j["min_cdeg"]))
    return sum(vals) / len(vals)


@pytest.mark.parametrize("hand", ["iso16", "iso22"])
def test_operator_grasps_pinches_and_gaits(hand):
    cfg = _hand_joints(hand)
    r = run_sim(OPERATOR % json.dumps(cfg) + """
print("RESULT " + json.dumps({"rows": trajectory(3, 30000, 20)}))
""")
    fingers = sorted({j["finger"] for j in cfg["joints"]})
    others = [f for f in fingers if f not in ("thumb", "index", "palm")]
    flex = [{f: _flexion(cfg, row, f) for f in fingers} for row in r["rows"]]
    assert any(all(v > 0.7 for v in fl.values()) for fl in flex)  # grasp
    assert any(all(v < 0.2 for v in fl.values()) for fl in flex)  # release
    assert any(fl["thumb"] > 0.5 and fl["index"] > 0.5 and all(fl[f] < 0.25 for f in others)
               for fl in flex)  # pinch
    for lifted in [f for f in fingers if f not in ("thumb", "palm")]:  # gaiting: one lifts
        assert any(fl[lifted] < 0.3 and all(fl[f] > 0.55 for f in fingers if f != lifted)
                   for fl in flex), lifted


def test_min_jerk_profile():
    r = run_sim("""
from voperator import min_jerk_q16
print("RESULT " + json.dumps({"s": [min_jerk_q16(t) for t in range(0, 65537, 4096)]}))
""")
    s = r["s"]
    assert s[0] == 0 and s[-1] == 65536 and abs(s[8] - 32768) <= 1
    assert all(b >= a for a, b in zip(s, s[1:]))
    assert s[1] < 65536 * 0.01 and s[-2] > 65536 * 0.99  # flat at both ends


def test_operator_and_sensors_allocate_nothing():
    r = mp("""
enc = AS5600Mux(i2c0, mux_addr=112, channels=(0, 1, 2), joints=(0, 1, 2))
for i in range(100):
    op.angle_cdeg(i & 7, vworld.now_us())
    enc.sample(raw, status)
    vworld.advance_us(1000)
gc.collect()
a = gc.mem_alloc()
for i in range(5000):           # 5 s: several pose changes
    op.angle_cdeg(i & 7, vworld.now_us())
    op.raw_turn16(i & 7, vworld.now_us())
    enc.sample(raw, status)
    vworld.advance_us(1000)
out(delta=gc.mem_alloc() - a)
""")
    assert r["delta"] == 0


# ---- servos -----------------------------------------------------------------------------

def test_servo_moves_with_speed_limit_and_lag():
    r = mp("""
from dexfw.drivers import feetech
line = vworld.bus("uart", 1)
servo = line.servos[1]
def write(addr, data):
    line.write(feetech.packet(1, feetech.INST_WRITE, [addr] + data))
write(40, [1])                       # torque on
write(42, [0x00, 0x0C])              # goal 3072: a quarter turn away
path = []
for _ in range(600):
    vworld.advance_us(1000)
    servo.update()
    path.append(servo.position())
write(42, [0xF0, 0x0B])              # goal 3056: a small step of 16 counts
small = []
for _ in range(100):
    vworld.advance_us(1000)
    servo.update()
    small.append(servo.position())
out(path=path, small=small, answers=line.any())
""")
    path = r["path"]
    steps = [b - a for a, b in zip([2048] + path, path)]
    assert max(steps) <= 3  # 3000 counts/s: at most 3 counts per ms
    assert path[99] < 2048 + 320  # the speed limit governs the long move ...
    assert path[-1] == 3072  # ... and it arrives
    small = r["small"]
    assert 3056 < small[0] < 3072  # first-order lag: a fraction of the step per ms ...
    assert abs(small[14] - (3072 - 16 * 0.63)) <= 2  # ... 63 % after one time constant
    assert small[-1] == 3056
    assert r["answers"] == 3 * 6  # each WRITE to one id is answered by a status packet


def test_servo_bus_ignores_bad_packets_and_answers_reads():
    r = mp("""
from dexfw.drivers import feetech, dynamixel
fline = vworld.bus("uart", 1)
bad = feetech.packet(2, feetech.INST_WRITE, [40, 1])
bad[-1] ^= 1
fline.write(bad)
fline.write(feetech.packet(2, feetech.INST_READ, [56, 2]))
got = bytearray(32)
n = fline.readinto(got, 32)
dline = vworld.bus("uart", 0)
dline.write(dynamixel.packet(8, dynamixel.INST_READ, [132, 0, 4, 0]))
dgot = bytearray(32)
m = dline.readinto(dgot, 32)
out(bad=fline.bad_packets, torque=fline.servos[2].torque, answer=bytes(got[:n]).hex(),
    danswer=bytes(dgot[:m]).hex())
""")
    assert r["bad"] == 1 and r["torque"] == 0
    # FF FF 02 04 00 00 08 CHK: id 2, no error, present position 2048
    assert r["answer"] == "ffff0204000008" + "%02x" % (0xFF ^ ((2 + 4 + 0 + 0 + 8) & 0xFF))
    assert r["danswer"].startswith("fffffd0008080055" + "0000080000")


def test_the_physics_takes_goals_and_torque_and_gives_positions_and_loads():
    """The seam a physics world attaches to (vphysics): the rig's servos move only through
    it, and it allocates nothing in the steady state."""
    r = mp("""
from dexfw.drivers import feetech
ph = vworld.physics
line = vworld.bus("uart", 1)
servo = line.servos[2]                # motor 1
line.write(feetech.packet(2, feetech.INST_WRITE, [40, 1]))          # torque on
line.write(feetech.packet(2, feetech.INST_WRITE, [42, 0x00, 0x0A])) # goal 2560
vworld.advance_us(5000)
mid = (ph.position(1), ph.load(1))
servo.update()                        # what the bus does before it answers a read
bus_view = (servo.position(), servo.load())
for _ in range(100):
    ph.drive(1, 2560, 1)
    vworld.advance_us(1000)
gc.collect()
a = gc.mem_alloc()
for _ in range(1000):
    ph.drive(1, 2560, 1)
    ph.position(1)
    ph.load(1)
    vworld.advance_us(1000)
delta = gc.mem_alloc() - a
ph.drive(1, 2560, 0)                  # torque off: it stays where it is, no load
vworld.advance_us(1000)
ph.drive(1, 2048, 0)
vworld.advance_us(50000)
ph.drive(1, 2048, 0)
out(mid=mid, bus_view=bus_view, at_goal=[ph.position(1), ph.load(1)],
    limp=[ph.position(1), ph.load(1)], other=ph.position(0), delta=delta,
    hand=vworld.operator is ph.operator)
""")
    assert r["mid"][0] == 2048  # not moved yet: drive() moves it, reading does not
    assert 2048 < r["bus_view"][0] <= 2048 + 15 and r["bus_view"][1] > 0  # lagging, loaded
    assert r["at_goal"] == [2560, 0]
    assert r["limp"] == [2560, 0]
    assert r["other"] == 2048 and r["delta"] == 0 and r["hand"]


def board_imports(path) -> set[str]:
    """The simulated rig's modules a board module imports, anywhere in it (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if (SIM_BOARD / (n + ".py")).is_file()}


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of graph (module -> modules it imports), or None."""
    done, path = set(), []

    def visit(m):
        if m in path:
            return path[path.index(m):] + [m]
        if m in done:
            return None
        path.append(m)
        for n in sorted(graph.get(m, ())):
            found = visit(n)
            if found:
                return found
        path.pop()
        done.add(m)
        return None

    for m in sorted(graph):
        found = visit(m)
        if found:
            return found
    return None


def test_the_rig_modules_import_without_a_cycle_and_vworld_is_a_leaf():
    graph = {p.stem: board_imports(p) for p in SIM_BOARD.glob("*.py")}
    assert {"vworld", "vrig", "vphysics", "vservo", "vmachine"} <= set(graph)
    assert import_cycle(graph) is None, import_cycle(graph)
    for leaf in ("vworld", "vfaults", "vnotes"):
        assert graph[leaf] == set(), "%s imports %s" % (leaf, graph[leaf])
    # The check sees a cycle, also one made by an import inside a function.
    assert import_cycle({"vworld": {"vrig"}, "vrig": {"vi2c", "vworld"}}) == [
        "vrig", "vworld", "vrig"]


# ---- chips -------------------------------------------------------------------------------

def test_as5600_registers():
    r = mp("""
op.set_angle(0, 0)
i2c0.writeto(112, b"\\x01")                     # mux channel 0
a = i2c0.readfrom_mem(0x36, 0x0C, 2)          # pointer to RAW_ANGLE
b = i2c0.readfrom(0x36, 2)                    # bare read: RAW_ANGLE again
st = i2c0.readfrom_mem(0x36, 0x0B, 1)[0]
vfaults.magnet_missing[0] = 1
st2 = i2c0.readfrom_mem(0x36, 0x0B, 1)[0]
i2c0.writeto(112, b"\\x00")
try:
    i2c0.readfrom(0x36, 2)
    nack = False
except OSError:
    nack = True
out(a=list(a), b=list(b), want=turn16_of(0, 0) >> 4, st=st, st2=st2, nack=nack,
    scan=i2c0.scan())
""")
    for v in (r["a"], r["b"]):
        assert abs(((v[0] << 8) | v[1]) - r["want"]) <= 1
    assert r["st"] == 0x20 and r["st2"] == 0x10  # MD; then ML without MD
    assert r["nack"]  # no channel selected: the chip is not on the bus
    assert r["scan"] == [112]


def test_wiring_errors_name_the_group():
    bad = dict(RIG, servos=[{"cls": "NoSuchBus", "bus": "uart1", "joints": [0], "args": {}}])
    proc = run_micropython("import json, vmachine\nvmachine.load_rig(json.loads(%r))\n"
                           % json.dumps(bad), paths=[SIM_BOARD], check=False)
    assert proc.returncode != 0 and b"NoSuchBus" in proc.stdout + proc.stderr
    bad = dict(RIG, encoders=[{"cls": "AS5600Mux", "bus": "i2c9", "joints": [0], "args": {}}])
    proc = run_micropython("import json, vmachine\nvmachine.load_rig(json.loads(%r))\n"
                           % json.dumps(bad), paths=[SIM_BOARD], check=False)
    assert proc.returncode != 0 and b"i2c9" in proc.stdout + proc.stderr


@pytest.mark.parametrize("hand", ["iso16", "iso22", "tendon16"])
def test_compiled_hands_run_on_the_simulated_rig(hand, tmp_path):
    """A hand compiled for the virtual board, built by the firmware's own builder over
    vmachine from dexlink.json in the current directory: encoders follow the operator,
    servos follow their goals, nothing allocates."""
    from dexlink import hwconfig
    cfg = hwconfig.compile_config(HANDS / (hand + ".toml"), "virtual")
    body = """
import array, gc, json
import vmachine, vworld
from dexfw import build
cfg = json.loads(%r)
with open("dexlink.json", "w") as f:
    f.write(json.dumps(cfg))
vworld.manual_clock()
encoders, servos = build.build(vmachine, cfg)      # the rig loads dexlink.json on first use
nj = len(cfg["joints"]); nm = len(cfg["motors"])
raw = array.array("H", [0] * nj); status = bytearray(32)
goal = array.array("h", [(m * 300) %% 4000 - 2000 for m in range(nm)])
present = array.array("h", [0] * nm)
for s in servos:
    s.torque(1)
def cycle():
    for e in encoders:
        e.sample(raw, status)
    for s in servos:
        s.write_goals(goal)
        s.poll(present, status)
    vworld.advance_us(1000)
for _ in range(1500):
    cycle()
gc.collect()
a = gc.mem_alloc()
for _ in range(500):
    cycle()
delta = gc.mem_alloc() - a
op = vworld.operator
want = [op.raw_turn16(j, vworld.now_us() - 1000) for j in range(nj)]  # when last sampled
print("RESULT " + json.dumps({"raw": list(raw), "want": want, "present": list(present),
      "goal": list(goal), "status": list(status[:max(nj, nm)]), "delta": delta}))
""" % json.dumps(cfg)
    proc = run_micropython(body, paths=[SIM_BOARD])
    line = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("RESULT ")][0]
    r = json.loads(line[7:])
    assert r["delta"] == 0
    assert r["status"] == [0] * len(r["status"])
    for got, want in zip(r["raw"], r["want"]):
        # quantisation and noise (AS5600: 16 per LSB), or one frame late (AS5048A chain)
        assert abs((got - want + 32768) % 65536 - 32768) <= 80
    for got, want in zip(r["present"], r["goal"]):
        assert abs(got - want) <= 5  # servo counts: 8.8 cdeg apart


def test_vmachine_console_without_the_supervisor_reads_stdin_and_polls_faults(tmp_path):
    """With no vconsole module (no supervisor), vmachine's Console is the boards' stdio
    console (dexfw.stdioconsole) that applies pending fault injections on every read."""
    board = tmp_path / "board"
    board.mkdir()
    for f in SIM_BOARD.glob("*.py"):
        if f.name != "vconsole.py":
            (board / f.name).write_text(f.read_text())
    out = run_micropython("""
import vfaults
polls = [0]
def counting_poll():
    polls[0] += 1
vfaults.poll = counting_poll
import vmachine
from dexfw.stdioconsole import StdioConsole
c = vmachine.Console()
buf = bytearray(8)
n = c.readinto(buf)
print(isinstance(c, StdioConsole), n, bytes(buf[:n]), c.readinto(buf), polls[0])
""", paths=[board], stdin=b"abc").stdout.decode().split()
    assert out == ["True", "3", "b'abc'", "0", "2"]


def test_operator_behaviours_switch_through_vfaults_and_allocate_nothing():
    """Inside the interpreter: the records the supervisor sends switch the behaviour, and
    holding zero, sweeping and the demo allocate nothing once running."""
    import json

    cfg = hwconfig.compile_config(ISO16, "virtual")
    r = run_sim("""
import gc
import vfaults
import vworld
from voperator import Operator, SWEEP_LEG_US
vworld.manual_clock()
cfg = json.loads(%r)
op = Operator(cfg["joints"], 1)
n = len(cfg["joints"])
def run(ms):
    lo = [99999] * n
    hi = [-99999] * n
    for i in range(ms):
        now = vworld.now_us()
        for j in range(n):
            q = op.angle_cdeg(j, now)
            lo[j] = min(lo[j], q)
            hi[j] = max(hi[j], q)
        vworld.advance_us(1000)
    return lo, hi
def ask(behaviour, finger):
    vfaults.apply(vfaults.KIND_OPERATOR, vfaults.OPERATOR_BEHAVIOURS.index(behaviour), 0, finger)
ask("zero", -1)
zero = run(50)
ask("sweep", vfaults.OPERATOR_FINGERS.index("middle"))
sweep = run(3 * SWEEP_LEG_US // 1000 + 10)
ask("demo", -1)
first_demo = [op.angle_cdeg(j, vworld.now_us()) for j in range(n)]
gc.collect()
deltas = []
for behaviour in ("zero", "sweep", "demo"):
    ask(behaviour, -1)
    for j in range(n):
        op.angle_cdeg(j, vworld.now_us())  # the switch itself may allocate (not the loop)
    gc.collect()
    a = gc.mem_alloc()
    for i in range(2000):
        op.angle_cdeg(i %% n, vworld.now_us())
        op.raw_turn16(i %% n, vworld.now_us())
        vworld.advance_us(500)
    deltas.append(gc.mem_alloc() - a)
print("RESULT " + json.dumps({"zero": zero, "sweep": sweep, "first_demo": first_demo,
                              "deltas": deltas}))
""" % json.dumps(cfg))
    assert r["deltas"] == [0, 0, 0]
    assert r["zero"] == [[0] * 16, [0] * 16]
    lo, hi = r["sweep"]
    for j, joint in enumerate(cfg["joints"]):
        if joint["finger"] == "middle":
            assert abs(lo[j] - joint["min_cdeg"]) <= 2 and abs(hi[j] - joint["max_cdeg"]) <= 2
        else:
            assert lo[j] == hi[j] == 0
    assert all(abs(q) <= 2 for q in r["first_demo"])  # the demo resumes from the sweep's end: 0
