"""Compile a hand (hardware/hands/*.toml) and a board (hardware/boards/*.toml) into the
JSON config the firmware loads at boot (/dexlink.json; shape in docs/interfaces.md).

Every error names the file and the field: "hardware/hands/iso16.toml: joints[3].range_deg:
min 90 must be below max 10". The compiled config is then checked once more by the
board's own checker (firmware/dexfw/config.py), so the host never ships a config the
board would refuse.

    python -m dexlink.hwconfig hardware/hands/iso16.toml pico -o dexlink.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tomllib
from pathlib import Path

from dexproto import catalog

from dexlink.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
BOARDS = HARDWARE / "boards"
HANDS = HARDWARE / "hands"
FIRMWARE = ROOT / "firmware"
FORMAT = 1

ARCHES = ("armv6m", "armv7m", "xtensawin", "none")


def _board_checker():
    """firmware/dexfw/config.py, the board's own checker, loaded as a plain module."""
    spec = importlib.util.spec_from_file_location("_dexfw_config", FIRMWARE / "dexfw" / "config.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BUS_FIELDS = _board_checker().BUS_FIELDS  # the board's table: both sides take the same buses
WATCHDOG_ACTIONS = {"hold": catalog.WATCHDOG_HOLD, "torque_off": catalog.WATCHDOG_TORQUE_OFF}
MUX_ADDRS = range(0x70, 0x78)  # TCA9548A: A2..A0 pick 0x70..0x77

# Chip or servo model -> (family, bus kind, driver module, driver class). The one table
# that names the firmware's drivers: rename a driver here.
DRIVERS = {
    "as5600": ("encoder", "i2c", "dexfw.drivers.as5600", "AS5600Mux"),
    "mt6701": ("encoder", "i2c", "dexfw.drivers.mt6701", "MT6701Mux"),
    "as5048a": ("encoder", "spi", "dexfw.drivers.as5048a", "AS5048AChain"),
    "sts3215": ("feetech", "uart", "dexfw.drivers.feetech", "FeetechBus"),
    "sts3032": ("feetech", "uart", "dexfw.drivers.feetech", "FeetechBus"),
    "xl330": ("dynamixel", "uart", "dexfw.drivers.dynamixel", "DynamixelBus"),
    "xm430": ("dynamixel", "uart", "dexfw.drivers.dynamixel", "DynamixelBus"),
    "pwm": ("pca9685", "i2c", "dexfw.drivers.pca9685", "PCA9685Servos"),
}
SERVO_IDS = {"feetech": range(0, 254), "dynamixel": range(0, 253), "pca9685": range(0, 16)}
INT16 = 32767
MAX_JOINTS = 32
# Coupling sums A.q in plain integers; on a 32-bit port a small int holds 30 bits, beyond
# that every product would be a heap-allocated big int. Keep each motor's sum below this.
COUPLING_BOUND = 1 << 29


class HwConfigError(UserError, ValueError):
    """A hand, board or compiled config that cannot be used; the message names file and field."""


class _Src:
    """Where values come from, for error messages: a file name and the field being read."""

    def __init__(self, path):
        self.path = str(path)

    def fail(self, field, problem):
        raise HwConfigError("%s: %s: %s" % (self.path, field, problem))

    def get(self, table, key, field, kind, default=None, required=True):
        where = "%s.%s" % (field, key) if field else key
        if key not in table:
            if required and default is None:
                self.fail(where, "missing")
            return default
        v = table[key]
        if kind is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                self.fail(where, "must be a number, got %r" % (v,))
            return float(v)
        if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
            self.fail(where, "must be an integer, got %r" % (v,))
        if kind is not int and not isinstance(v, kind):
            self.fail(where, "must be a %s, got %r" % (kind.__name__, v))
        return v

    def choice(self, table, key, field, choices, default=None):
        v = self.get(table, key, field, str, default)
        if v not in choices:
            self.fail("%s.%s" % (field, key) if field else key,
                      "must be one of %s, got %r" % (", ".join(sorted(choices)), v))
        return v

    def int_in(self, table, key, field, lo, hi, default=None):
        v = self.get(table, key, field, int, default)
        if not lo <= v <= hi:
            self.fail("%s.%s" % (field, key) if field else key,
                      "must be in %d..%d, got %d" % (lo, hi, v))
        return v

    def direction(self, table, field):
        v = self.get(table, "direction", field, int, 1)
        if v not in (1, -1):
            self.fail(field + ".direction", "must be 1 or -1, got %r" % (v,))
        return v

    def range_cdeg(self, table, key, field):
        v = self.get(table, key, field, list)
        where = "%s.%s" % (field, key)
        if len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
            self.fail(where, "must be [min, max] in degrees, got %r" % (v,))
        lo, hi = (round(x * 100) for x in v)
        if not -INT16 <= lo < hi <= INT16:
            self.fail(where, "must satisfy -327.67 <= min < max <= 327.67 degrees, got %r" % (v,))
        return lo, hi


def read_toml(path: str | Path) -> dict:
    """A TOML file's table; HwConfigError naming the file when it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise HwConfigError("%s: no such file" % path) from None
    except IsADirectoryError:
        raise HwConfigError("%s: is a directory, not a TOML file" % path) from None
    except OSError as e:
        raise HwConfigError("%s: cannot read: %s" % (path, e.strerror or e)) from None
    except UnicodeDecodeError as e:
        raise HwConfigError("%s: not a text file (byte %d is not UTF-8): not TOML"
                            % (path, e.start)) from None
    except tomllib.TOMLDecodeError as e:
        raise HwConfigError("%s: not valid TOML: %s" % (path, e)) from None



def board_path(board: str | Path) -> Path:
    """A board name (hardware/boards/<name>.toml) or a path to a board file."""
    p = Path(board)
    if p.suffix == ".toml":
        return p
    p = BOARDS / ("%s.toml" % board)
    if not p.exists():
        names = sorted(f.stem for f in BOARDS.glob("*.toml"))
        raise HwConfigError("%s: no such board (boards: %s)" % (board, ", ".join(names)))
    return p


def load_board(board: str | Path) -> dict:
    """The board's description, checked, as the config's "board" section."""
    path = board_path(board)
    src = _Src(path)
    t = read_toml(path)
    out = {
        "name": src.get(t, "name", "", str),
        "hal": src.get(t, "hal", "", str),
        "arch": src.choice(t, "arch", "", ARCHES),
        "console": src.get(t, "console", "", str),
        "buses": {},
    }
    buses = src.get(t, "buses", "", dict)
    for name, b in buses.items():
        field = "buses.%s" % name
        if not isinstance(b, dict):
            src.fail(field, "must be a table")
        kind = src.choice(b, "kind", field, BUS_FIELDS)
        bus = {"kind": kind}
        for key in BUS_FIELDS[kind]:
            bus[key] = src.int_in(b, key, field, 0, 100_000_000)
        if kind == "spi" and "cs" in b:
            bus["cs"] = src.int_in(b, "cs", field, 0, 255)
        out["buses"][name] = bus
    if not out["buses"]:
        src.fail("buses", "a board needs at least one bus")
    return out


def _servo(src, s, field, buses):
    """One servo table -> (family, bus name, id or channel, model, motor fields)."""
    model = src.choice(s, "model", field, [m for m, d in DRIVERS.items() if d[0] != "encoder"])
    family, kind = DRIVERS[model][:2]
    bus = src.choice(s, "bus", field, buses)
    if buses[bus]["kind"] != kind:
        src.fail(field + ".bus", "%s servos need a %s bus; %s is %s"
                 % (model, kind, bus, buses[bus]["kind"]))
    ids = SERVO_IDS[family]
    sid = src.int_in(s, "id", field, ids.start, ids.stop - 1)
    lo, hi = src.range_cdeg(s, "range_deg", field)
    offset = round(src.get(s, "center_deg", field, float, 0.0) * 100)
    if max(abs(lo), abs(hi)) + abs(offset) > INT16:
        src.fail(field + ".center_deg", "range_deg shifted by center_deg leaves -327.67..327.67")
    motor = {"direction": src.direction(s, field), "offset_cdeg": offset,
             "min_cdeg": lo, "max_cdeg": hi}
    extra = {"addr": src.int_in(s, "addr", field, 0x40, 0x7F, 0x40)} if family == "pca9685" else {}
    return family, bus, sid, model, motor, extra


def _joint(src, j, field, buses):
    name = src.get(j, "name", field, str)
    lo, hi = src.range_cdeg(j, "range_deg", field)
    speed = round(src.get(j, "max_speed_dps", field, float, 360.0) / 10)
    if not 1 <= speed <= 65535:
        src.fail(field + ".max_speed_dps", "must be 10..655350 degrees per second")
    e = src.get(j, "encoder", field, dict)
    ef = field + ".encoder"
    scale = round(src.get(e, "scale", ef, float, 1.0) * 4096)
    if scale == 0 or abs(scale) > INT16:
        src.fail(ef + ".scale", "must be non-zero and within +-7.99")
    zero = src.get(e, "zero_deg", ef, float)
    if not 0.0 <= zero < 360.0:
        src.fail(ef + ".zero_deg", "must be in [0, 360), got %r" % zero)
    joint = {"name": name, "finger": src.get(j, "finger", field, str),
             "zero_turn16": round(zero / 360.0 * 65536) & 0xFFFF,
             "direction": src.direction(e, ef), "scale_q12": scale,
             "min_cdeg": lo, "max_cdeg": hi, "max_speed_cdeg_per_ms": speed}
    chip = src.choice(e, "chip", ef, [c for c, d in DRIVERS.items() if d[0] == "encoder"])
    bus = src.choice(e, "bus", ef, buses)
    kind = DRIVERS[chip][1]
    if buses[bus]["kind"] != kind:
        src.fail(ef + ".bus", "%s needs a %s bus; %s is %s" % (chip, kind, bus, buses[bus]["kind"]))
    if kind == "spi":
        place = (src.int_in(e, "position", ef, 0, MAX_JOINTS - 1),)
    else:
        mux = e.get("mux")
        if mux is not None:
            mux = src.int_in(e, "mux", ef, MUX_ADDRS.start, MUX_ADDRS.stop - 1)
        place = (mux, src.int_in(e, "channel", ef, 0, 7, 0 if mux is None else None))
    return joint, (chip, bus) + place


def _encoder_groups(src, wiring):
    """Group joints by (chip, bus, mux) into driver groups, checking each place is used once."""
    groups = {}
    seen = {}
    for i, w in enumerate(wiring):
        chip, bus = w[:2]
        field = "joints[%d].encoder" % i
        key = (bus,) + w[2:]
        if key in seen:
            src.fail(field, "same bus/mux/channel (or chain position) as joints[%d]" % seen[key])
        seen[key] = i
        gkey = (chip, bus, w[2]) if DRIVERS[chip][1] == "i2c" else (chip, bus)
        groups.setdefault(gkey, []).append((i, w))
    out = []
    chips_on_bus = {}
    for gkey, members in groups.items():
        chip, bus = gkey[:2]
        if chips_on_bus.setdefault(bus, chip) != chip and DRIVERS[chip][1] == "spi":
            src.fail("joints[%d].encoder.chip" % members[0][0], "one SPI chain holds one chip type")
        _, _, module, cls = DRIVERS[chip]
        joints = [i for i, _ in members]
        if DRIVERS[chip][1] == "spi":
            members.sort(key=lambda m: m[1][2])
            positions = [m[1][2] for m in members]
            if positions != list(range(len(members))):
                src.fail("joints[%d].encoder.position" % members[0][0],
                         "chain positions on %s must be 0..%d, got %s"
                         % (bus, len(members) - 1, sorted(positions)))
            args = {}
            joints = [i for i, _ in members]
        else:
            mux = gkey[2]
            if mux is None and len(members) > 1:
                src.fail("joints[%d].encoder.mux" % members[1][0],
                         "%s has a fixed address: several on %s need a mux" % (chip, bus))
            args = {"mux_addr": mux, "channels": [m[1][3] for m in members]}
        out.append({"module": module, "cls": cls, "bus": bus, "joints": joints, "args": args})
    return out


def _servo_groups(src, servos, fields):
    """Group motors by bus into driver groups; one family per bus, ids unique per bus."""
    groups = {}
    for m, (family, bus, sid, model, _motor, extra) in enumerate(servos):
        g = groups.setdefault(bus, {"family": family, "model": model, "members": []})
        if g["family"] != family:
            src.fail(fields[m] + ".model", "bus %s already carries %s servos" % (bus, g["family"]))
        for other, osid, _ in g["members"]:
            if osid == sid:
                src.fail(fields[m] + ".id", "id %d is already used on %s by %s"
                         % (sid, bus, fields[other]))
        g["members"].append((m, sid, extra))
    out = []
    for bus, g in groups.items():
        _, _, module, cls = DRIVERS[g["model"]]
        motors = [m for m, _, _ in g["members"]]
        ids = [sid for _, sid, _ in g["members"]]
        if g["family"] == "pca9685":
            args = {"addr": g["members"][0][2]["addr"], "channels": ids}
        else:
            args = {"ids": ids, "model": g["model"]}
        out.append({"module": module, "cls": cls, "bus": bus, "joints": motors, "args": args})
    return out


def _coupling(src, t, joints, motors):
    c = src.get(t, "coupling", "", dict)
    a = src.get(c, "a", "coupling", list)
    if len(a) != len(motors):
        src.fail("coupling.a", "needs one row per motor (%d), got %d" % (len(motors), len(a)))
    rows = []
    for m, row in enumerate(a):
        where = "coupling.a[%d]" % m
        if not isinstance(row, list) or len(row) != len(joints):
            src.fail(where, "needs one column per joint (%d)" % len(joints))
        q12 = []
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or abs(x) > 7.99:
                src.fail("%s[%d]" % (where, j), "must be a number within +-7.99, got %r" % (x,))
            q12.append(round(x * 4096))
        bound = sum(abs(v) * max(abs(jt["min_cdeg"]), abs(jt["max_cdeg"]))
                    for v, jt in zip(q12, joints))
        if bound >= COUPLING_BOUND:
            src.fail(where, "coefficients times joint ranges reach %d, over the 2^29 the "
                     "board's integer arithmetic allows" % bound)
        if not any(q12):
            src.fail(where, "motor %s is driven by no joint" % motors[m]["name"])
        rows.append(q12)
    b = src.get(c, "b_deg", "coupling", list, [0.0] * len(motors))
    if len(b) != len(motors):
        src.fail("coupling.b_deg", "needs one value per motor (%d), got %d" % (len(motors), len(b)))
    b_cdeg = []
    for m, x in enumerate(b):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or abs(x) > 327.67:
            src.fail("coupling.b_deg[%d]" % m, "must be a number within +-327.67, got %r" % (x,))
        b_cdeg.append(round(x * 100))
    return {"a_q12": rows, "b_cdeg": b_cdeg}


def calibration_path(hand_path: str | Path) -> Path:
    """Where `dexlink calibrate` keeps a hand's calibration: HAND.calibration.toml beside it."""
    hand_path = Path(hand_path)
    return hand_path.with_name(hand_path.stem + ".calibration.toml")


def apply_calibration(joints: list[dict], cal_path: Path) -> dict:
    """Merge a calibration file into compiled joints (in place); return its summary.

    Per calibrated joint: zero_turn16 and direction replace the hand file's encoder
    values, and the swept range_deg narrows the joint's limits (never widens them: the
    hand file's range is the mechanical limit). Errors name the file and field.
    """
    src = _Src(cal_path)
    t = read_toml(cal_path)
    table = src.get(t, "joints", "", dict)
    index = {j["name"]: i for i, j in enumerate(joints)}
    for name, c in table.items():
        field = 'joints."%s"' % name
        if not isinstance(c, dict):
            src.fail(field, "must be a table")
        if name not in index:
            src.fail(field, "no joint of that name in the hand (%s)" % ", ".join(index))
        i = index[name]
        if "index" in c and src.get(c, "index", field, int) != i:
            src.fail(field + ".index", "is %r but the hand has %s at %d: the hand file changed, "
                     "re-run dexlink calibrate" % (c["index"], name, i))
        joint = joints[i]
        joint["zero_turn16"] = src.int_in(c, "zero_turn16", field, 0, 65535)
        joint["direction"] = src.direction(c, field)
        if "range_deg" in c:
            lo, hi = src.range_cdeg(c, "range_deg", field)
            lo, hi = max(lo, joint["min_cdeg"]), min(hi, joint["max_cdeg"])
            if lo >= hi:
                src.fail(field + ".range_deg", "does not overlap the hand's range [%g, %g] deg"
                         % (joint["min_cdeg"] / 100, joint["max_cdeg"] / 100))
            joint["min_cdeg"], joint["max_cdeg"] = lo, hi
    return {"file": cal_path.name, "updated": str(t.get("updated", "")), "joints": sorted(table)}


def load_hand(path: str | Path) -> dict:
    """A hand file's table, its joints checked to be 1..MAX_JOINTS tables with names: what
    commands that only need the joints (names, fingers) rely on. compile_config checks
    the rest."""
    src = _Src(path)
    t = read_toml(path)
    tables = src.get(t, "joints", "", list)
    if not 1 <= len(tables) <= MAX_JOINTS:
        src.fail("joints", "a hand has 1..%d [[joints]], got %d" % (MAX_JOINTS, len(tables)))
    for i, j in enumerate(tables):
        if not isinstance(j, dict):
            src.fail("joints[%d]" % i, "must be a table")
        src.get(j, "name", "joints[%d]" % i, str)
    return t


def compile_config(hand_path: str | Path, board_name: str | Path,
                   calibration: str | Path | bool | None = None) -> dict:
    """The firmware's config for a hand file on a board; raises HwConfigError naming the field.

    calibration: a calibration file to merge; None: HAND.calibration.toml next to the
    hand file when there is one; False: none (the hand file's encoder values).
    """
    board = load_board(board_name)
    path = Path(hand_path)
    src = _Src(path)
    t = load_hand(path)
    loop = src.get(t, "loop", "", dict, {})
    cfg = {
        "format": FORMAT,
        "hand": src.get(t, "name", "", str),
        "board": board,
        "loop": {
            "hz": src.int_in(loop, "hz", "loop", 10, 5000, 1000),
            "telemetry_decimation": src.int_in(loop, "telemetry_decimation", "loop", 1, 10000, 10),
            "watchdog_ms": src.int_in(loop, "watchdog_ms", "loop", 10, 60000, 250),
            "watchdog_action": WATCHDOG_ACTIONS[
                src.choice(loop, "watchdog_action", "loop", WATCHDOG_ACTIONS, "hold")],
        },
    }
    tables = t["joints"]
    joints, wiring, servos, servo_fields = [], [], [], []
    names = {}
    buses = board["buses"]
    coupled = "motors" in t
    for i, j in enumerate(tables):
        field = "joints[%d]" % i
        joint, w = _joint(src, j, field, buses)
        if joint["name"] in names:
            src.fail(field + ".name",
                     "%r is already joints[%d]" % (joint["name"], names[joint["name"]]))
        names[joint["name"]] = i
        joints.append(joint)
        wiring.append(w)
        if coupled:
            if "servo" in j:
                src.fail(field + ".servo", "a coupled hand drives [[motors]], not joints")
        else:
            s = src.get(j, "servo", field, dict)
            servos.append(_servo(src, s, field + ".servo", buses) + (joint["name"],))
            servo_fields.append(field + ".servo")
    if coupled:
        for m, mt in enumerate(src.get(t, "motors", "", list)):
            field = "motors[%d]" % m
            if not isinstance(mt, dict):
                src.fail(field, "must be a table")
            name = src.get(mt, "name", field, str)
            s = src.get(mt, "servo", field, dict)
            servos.append(_servo(src, s, field + ".servo", buses) + (name,))
            servo_fields.append(field + ".servo")
        if not 1 <= len(servos) <= MAX_JOINTS:
            src.fail("motors", "a hand has 1..%d motors, got %d" % (MAX_JOINTS, len(servos)))
    elif "coupling" in t:
        src.fail("coupling",
                 "a coupling needs [[motors]]; joints with servos are driven one to one")
    motors = []
    for family, bus, sid, model, motor, extra, name in servos:
        motors.append(dict(name=name, **motor))
    cfg["joints"] = joints
    cfg["motors"] = motors
    cfg["coupling"] = _coupling(src, t, joints, motors) if coupled else None
    cfg["encoders"] = _encoder_groups(src, wiring)
    cfg["servos"] = _servo_groups(src, [s[:6] for s in servos], servo_fields)
    if calibration is None and calibration_path(path).is_file():
        calibration = calibration_path(path)
    if calibration:
        # In the JSON, so HELLO's config_crc tells which calibration a board runs.
        cfg["calibration"] = apply_calibration(joints, Path(calibration))
    validate_config(cfg, "%s on %s" % (path, board["name"]))
    return cfg


def validate_config(cfg: dict, source: str = "config") -> None:
    """Check a compiled config with the board's own rules; HwConfigError names source and field."""
    try:
        _board_checker().check(cfg)
    except ValueError as e:
        raise HwConfigError("%s: %s" % (source, e)) from None


def load_config(path: str | Path) -> dict:
    """Read and check a compiled dexlink.json."""
    try:
        cfg = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HwConfigError("%s: no such file" % path) from None
    except json.JSONDecodeError as e:
        raise HwConfigError("%s: not valid JSON: %s" % (path, e)) from None
    validate_config(cfg, str(path))
    return cfg


def dumps(cfg: dict) -> str:
    """The config as the board stores it: compact JSON (the board parses it at boot)."""
    return json.dumps(cfg, separators=(",", ":"))


# Bus time per cycle on real hardware, computed from the configured bus speeds.
# I2C: start + address/data bytes of 9 clocks + stop. UART: 10 bits a byte.
def _i2c_bits(n_bytes):
    return 2 + 9 * n_bytes


ENCODER_BITS = {
    # AS5600: RAW_ANGLE read with the pointer left in place: address + 2 bytes.
    "AS5600Mux": _i2c_bits(3),
    # MT6701: pointer write (address + register) then a repeated-start read of 2 bytes.
    "MT6701Mux": _i2c_bits(2) + _i2c_bits(3),
}
MUX_SELECT_BITS = _i2c_bits(2)  # TCA9548A: address + control byte


def bus_time_us(cfg: dict) -> dict:
    """Bus microseconds one loop cycle needs on each bus: {bus: us}."""
    buses = cfg["board"]["buses"]
    out = {name: 0.0 for name in buses}
    for g in cfg["encoders"]:
        b = buses[g["bus"]]
        n = len(g["joints"])
        if g["cls"] == "AS5048AChain":
            out[g["bus"]] += n * 16 / b["baudrate"] * 1e6  # one pipelined frame per chip
        else:
            mux = MUX_SELECT_BITS if g["args"].get("mux_addr") is not None else 0
            out[g["bus"]] += n * (ENCODER_BITS[g["cls"]] + mux) / b["freq"] * 1e6
    for g in cfg["servos"]:
        b = buses[g["bus"]]
        n = len(g["joints"])
        if g["cls"] == "FeetechBus":
            # SYNC_WRITE of 2-byte goals, plus one servo's READ + status reply per cycle.
            nbytes = 8 + 3 * n + 8 + 8
        elif g["cls"] == "DynamixelBus":
            # SYNC_WRITE of 4-byte goals, plus one READ (14 B) + status (15 B) per cycle.
            nbytes = 14 + 5 * n + 14 + 15
        else:
            # PCA9685: 4 bytes per channel, written at most at 50 Hz: amortised per cycle.
            hz = cfg["loop"]["hz"]
            out[g["bus"]] += n * _i2c_bits(6) / b["freq"] * 1e6 * min(1.0, 50 / hz)
            continue
        out[g["bus"]] += nbytes * 10 / b["baudrate"] * 1e6
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dexlink.hwconfig",
        description="Compile a hand TOML and a board into the firmware's dexlink.json.",
        epilog="example: python -m dexlink.hwconfig hardware/hands/iso16.toml pico -o dexlink.json\n"
               "example: python -m dexlink.hwconfig my/iso16.toml pico --calibration "
               "my/iso16.calibration.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("hand", help="hand file, e.g. hardware/hands/iso16.toml")
    ap.add_argument("board", help="board name (%s) or a board .toml"
                    % ", ".join(sorted(f.stem for f in BOARDS.glob("*.toml"))))
    ap.add_argument("-o", "--output", help="write the JSON here (default: standard output)")
    ap.add_argument("--calibration", metavar="FILE",
                    help="calibration to merge (default: HAND.calibration.toml next to the hand "
                         "file, when present)")
    args = ap.parse_args(argv)
    try:
        cfg = compile_config(args.hand, args.board, args.calibration)
    except HwConfigError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    period = 1e6 / cfg["loop"]["hz"]
    for bus, us in bus_time_us(cfg).items():
        if us > period:
            print("warning: bus %s needs %.0f us per cycle, over the %.0f us period at %d Hz"
                  % (bus, us, period, cfg["loop"]["hz"]), file=sys.stderr)
    text = dumps(cfg)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as e:
            print("error: cannot write %s: %s" % (args.output, e.strerror or e), file=sys.stderr)
            return 2
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
