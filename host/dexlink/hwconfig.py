"""Compile a hand (hardware/hands/*.toml) and a board (hardware/boards/*.toml) into the
JSON config the firmware loads at boot (/dexlink.json; shape in docs/interfaces.md).

Every error names the file and the field: "hardware/hands/iso16.toml: joints[3].range_deg:
min 90 must be below max 10". The limits come from the board's own checker
(firmware/dexfw/config.py, found through dexlink.resources), and the compiled config is
checked by it once more, so the host never ships a config the board would refuse.

    python -m dexlink.hwconfig iso16 pico -o dexlink.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dexlink import resources
from dexlink.errors import UserError
from dexproto import catalog

BOARDS = resources.boards_dir()
HANDS = resources.hands_dir()

# The board's rules, read from its checker and never restated here.
_BOARD = resources.board_checker()
FORMAT = _BOARD.FORMAT
MAX_JOINTS = _BOARD.MAX_JOINTS
INT16 = _BOARD.INT16
# Coupling sums A.q in plain integers; on a 32-bit port a small int holds 30 bits, beyond
# that every product would be a heap-allocated big int. Each motor's sum stays below this.
COUPLING_BOUND = _BOARD.COUPLING_BOUND
BUS_FIELDS = _BOARD.BUS_FIELDS  # both sides take the same buses
LOOP_LIMITS = {name: (lo, hi) for name, lo, hi in _BOARD.LOOP_LIMITS}
JOINT_LIMITS = {name: (lo, hi) for name, lo, hi in _BOARD.JOINT_LIMITS}
CDEG_LIMIT = INT16 / 100  # degrees as int16 centidegrees: +-327.67
# A Q12 coefficient in int16, as a hand file writes it (two decimals): +-7.99
Q12_LIMIT = math.floor(INT16 / 4096 * 100) / 100

# What a hand file may leave out of [loop].
LOOP_DEFAULTS = {"hz": 1000, "telemetry_decimation": 10, "watchdog_ms": 250}
WATCHDOG_ACTIONS = {"hold": catalog.WATCHDOG_HOLD, "torque_off": catalog.WATCHDOG_TORQUE_OFF}
ARCHES = ("armv6m", "armv7m", "armv7emdp", "xtensawin", "none")
MUX_ADDRS = range(0x70, 0x78)  # TCA9548A: A2..A0 pick 0x70..0x77


@dataclass(frozen=True)
class Driver:
    """The firmware driver for a chip or servo model."""

    family: str  # "encoder", or the servo protocol: "feetech", "dynamixel", "pca9685"
    bus_kind: str  # the bus it needs: "i2c", "spi" or "uart"
    module: str  # the firmware module that holds it
    cls: str  # its class there

    @property
    def is_encoder(self) -> bool:
        return self.family == "encoder"


# Chip or servo model -> its driver. The one table that names the firmware's drivers:
# rename a driver here.
DRIVERS = {
    "as5600": Driver("encoder", "i2c", "dexfw.drivers.as5600", "AS5600Mux"),
    "mt6701": Driver("encoder", "i2c", "dexfw.drivers.mt6701", "MT6701Mux"),
    "as5048a": Driver("encoder", "spi", "dexfw.drivers.as5048a", "AS5048AChain"),
    "sts3215": Driver("feetech", "uart", "dexfw.drivers.feetech", "FeetechBus"),
    "sts3032": Driver("feetech", "uart", "dexfw.drivers.feetech", "FeetechBus"),
    "xl330": Driver("dynamixel", "uart", "dexfw.drivers.dynamixel", "DynamixelBus"),
    "xm430": Driver("dynamixel", "uart", "dexfw.drivers.dynamixel", "DynamixelBus"),
    "pwm": Driver("pca9685", "i2c", "dexfw.drivers.pca9685", "PCA9685Servos"),
}
ENCODER_CHIPS = [m for m, d in DRIVERS.items() if d.is_encoder]
SERVO_MODELS = [m for m, d in DRIVERS.items() if not d.is_encoder]
SERVO_IDS = {"feetech": range(0, 254), "dynamixel": range(0, 253), "pca9685": range(0, 16)}


@dataclass(frozen=True)
class EncoderPlace:
    """Where a joint's encoder is wired: an I2C chip behind an optional mux channel, or an
    SPI chip at a position in a daisy chain."""

    joint: int
    chip: str
    bus: str
    mux: int | None = None  # I2C: the TCA9548A's address, None without a mux
    channel: int | None = None  # I2C: the mux channel
    position: int | None = None  # SPI: the place in the chain

    @property
    def driver(self) -> Driver:
        return DRIVERS[self.chip]

    @property
    def slot(self) -> tuple:
        """What no two encoders may share."""
        if self.driver.bus_kind == "spi":
            return (self.bus, self.position)
        return (self.bus, self.mux, self.channel)

    @property
    def group(self) -> tuple:
        """Encoders one driver instance reads: a chip type on a bus (behind one mux)."""
        if self.driver.bus_kind == "spi":
            return (self.chip, self.bus)
        return (self.chip, self.bus, self.mux)


@dataclass(frozen=True)
class ServoPlace:
    """A motor's servo: a model on a bus at an id (a PCA9685's channel), and the motor's
    fields of the config's motors[] entry."""

    motor: int
    field: str  # where it was read, for errors: "joints[3].servo", "motors[1].servo"
    name: str
    model: str
    bus: str
    id: int
    motor_fields: dict
    pca_addr: int | None = None  # PCA9685: the chip's I2C address

    @property
    def driver(self) -> Driver:
        return DRIVERS[self.model]


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
            self.fail(where, "must satisfy -%.2f <= min < max <= %.2f degrees, got %r"
                      % (CDEG_LIMIT, CDEG_LIMIT, v))
        return lo, hi

    def limited(self, table, key, field, limits, default=None):
        """An integer within the board's (lo, hi) for it."""
        return self.int_in(table, key, field, limits[0], limits[1], default)


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

def shipped_names(directory: Path) -> list[str]:
    """The names of the boards or hands that come with dexlink (hardware/boards, hardware/hands)."""
    return sorted(f.stem for f in directory.glob("*.toml")
                  if not f.name.endswith(".calibration.toml"))


def _is_name(value: str | Path) -> bool:
    """A bare name ("pico", "iso16") rather than a path ("my/iso16.toml", "x.toml")."""
    text = str(value)
    return not text.endswith(".toml") and "/" not in text and os.sep not in text


def board_path(board: str | Path) -> Path:
    """A board that comes with dexlink by name (hardware/boards/<name>.toml), or a board file."""
    if not _is_name(board):
        return Path(board)
    p = BOARDS / ("%s.toml" % board)
    if not p.is_file():
        raise HwConfigError("%s: no such board (boards: %s)"
                            % (board, ", ".join(shipped_names(BOARDS))))
    return p


def hand_path(hand: str | Path) -> Path:
    """A hand that comes with dexlink by name (hardware/hands/<name>.toml), or a hand file.

    A path is returned as given, existing or not (reading it says "no such file").
    """
    if not _is_name(hand):
        return Path(hand)
    p = HANDS / ("%s.toml" % hand)
    if not p.is_file():
        raise HwConfigError("%s: no such hand (hands: %s; or a path to a hand .toml)"
                            % (hand, ", ".join(shipped_names(HANDS))))
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
    # A second core the firmware makes TELEMETRY on (dexfw.telemetry; RP2040, RP2350):
    # written into the config only when true, so other boards' configs stay as they were.
    if src.get(t, "second_core", "", bool, False):
        out["second_core"] = True
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


def _servo(src, s, field, buses, motor, name) -> ServoPlace:
    """One servo table: its model, bus, id (or channel) and the motor's fields."""
    model = src.choice(s, "model", field, SERVO_MODELS)
    driver = DRIVERS[model]
    bus = src.choice(s, "bus", field, buses)
    if buses[bus]["kind"] != driver.bus_kind:
        src.fail(field + ".bus", "%s servos need a %s bus; %s is %s"
                 % (model, driver.bus_kind, bus, buses[bus]["kind"]))
    ids = SERVO_IDS[driver.family]
    sid = src.int_in(s, "id", field, ids.start, ids.stop - 1)
    lo, hi = src.range_cdeg(s, "range_deg", field)
    offset = round(src.get(s, "center_deg", field, float, 0.0) * 100)
    if max(abs(lo), abs(hi)) + abs(offset) > INT16:
        src.fail(field + ".center_deg", "range_deg shifted by center_deg leaves -%.2f..%.2f"
                 % (CDEG_LIMIT, CDEG_LIMIT))
    fields = {"direction": src.direction(s, field), "offset_cdeg": offset,
              "min_cdeg": lo, "max_cdeg": hi}
    addr = src.int_in(s, "addr", field, 0x40, 0x7F, 0x40) if driver.family == "pca9685" else None
    return ServoPlace(motor, field, name, model, bus, sid, fields, addr)


def _joint(src, j, field, buses, index) -> tuple[dict, EncoderPlace]:
    """One [[joints]] table: the config's joint entry and where its encoder is wired."""
    name = src.get(j, "name", field, str)
    lo, hi = src.range_cdeg(j, "range_deg", field)
    speed_lo, speed_hi = JOINT_LIMITS["max_speed_cdeg_per_ms"]
    speed = round(src.get(j, "max_speed_dps", field, float, 360.0) / 10)  # cdeg/ms = dps / 10
    if not speed_lo <= speed <= speed_hi:
        src.fail(field + ".max_speed_dps", "must be %d..%d degrees per second"
                 % (speed_lo * 10, speed_hi * 10))
    e = src.get(j, "encoder", field, dict)
    ef = field + ".encoder"
    scale = round(src.get(e, "scale", ef, float, 1.0) * 4096)
    scale_lo, scale_hi = JOINT_LIMITS["scale_q12"]
    if scale == 0 or not scale_lo <= scale <= scale_hi:
        src.fail(ef + ".scale", "must be non-zero and within +-%.2f" % Q12_LIMIT)
    zero = src.get(e, "zero_deg", ef, float)
    if not 0.0 <= zero < 360.0:
        src.fail(ef + ".zero_deg", "must be in [0, 360), got %r" % zero)
    joint = {"name": name, "finger": src.get(j, "finger", field, str),
             "zero_turn16": round(zero / 360.0 * 65536) & 0xFFFF,
             "direction": src.direction(e, ef), "scale_q12": scale,
             "min_cdeg": lo, "max_cdeg": hi, "max_speed_cdeg_per_ms": speed}
    chip = src.choice(e, "chip", ef, ENCODER_CHIPS)
    bus = src.choice(e, "bus", ef, buses)
    kind = DRIVERS[chip].bus_kind
    if buses[bus]["kind"] != kind:
        src.fail(ef + ".bus", "%s needs a %s bus; %s is %s" % (chip, kind, bus, buses[bus]["kind"]))
    if kind == "spi":
        place = EncoderPlace(index, chip, bus, position=src.int_in(e, "position", ef, 0,
                                                                   MAX_JOINTS - 1))
    else:
        mux = e.get("mux")
        if mux is not None:
            mux = src.int_in(e, "mux", ef, MUX_ADDRS.start, MUX_ADDRS.stop - 1)
        channel = src.int_in(e, "channel", ef, 0, 7, 0 if mux is None else None)
        place = EncoderPlace(index, chip, bus, mux=mux, channel=channel)
    return joint, place


def _encoder_groups(src, places: list[EncoderPlace]) -> list[dict]:
    """Group joints by (chip, bus, mux) into driver groups, checking each place is used once."""
    groups: dict[tuple, list[EncoderPlace]] = {}
    seen = {}
    for w in places:
        field = "joints[%d].encoder" % w.joint
        if w.slot in seen:
            src.fail(field, "same bus/mux/channel (or chain position) as joints[%d]" % seen[w.slot])
        seen[w.slot] = w.joint
        groups.setdefault(w.group, []).append(w)
    out = []
    chips_on_bus = {}
    for members in groups.values():
        first = members[0]
        driver = first.driver
        spi = driver.bus_kind == "spi"
        if chips_on_bus.setdefault(first.bus, first.chip) != first.chip and spi:
            src.fail("joints[%d].encoder.chip" % first.joint, "one SPI chain holds one chip type")
        if spi:
            members.sort(key=lambda m: m.position)
            positions = [m.position for m in members]
            if positions != list(range(len(members))):
                src.fail("joints[%d].encoder.position" % members[0].joint,
                         "chain positions on %s must be 0..%d, got %s"
                         % (first.bus, len(members) - 1, sorted(positions)))
            args = {}
        else:
            if first.mux is None and len(members) > 1:
                src.fail("joints[%d].encoder.mux" % members[1].joint,
                         "%s has a fixed address: several on %s need a mux"
                         % (first.chip, first.bus))
            args = {"mux_addr": first.mux, "channels": [m.channel for m in members]}
        out.append({"module": driver.module, "cls": driver.cls, "bus": first.bus,
                    "joints": [m.joint for m in members], "args": args})
    return out


def _servo_groups(src, servos: list[ServoPlace]) -> list[dict]:
    """Group motors by bus into driver groups; one family per bus, ids unique per bus."""
    groups: dict[str, list[ServoPlace]] = {}
    for s in servos:
        members = groups.setdefault(s.bus, [])
        if members and members[0].driver.family != s.driver.family:
            src.fail(s.field + ".model", "bus %s already carries %s servos"
                     % (s.bus, members[0].driver.family))
        for other in members:
            if other.id == s.id:
                src.fail(s.field + ".id", "id %d is already used on %s by %s"
                         % (s.id, s.bus, other.field))
        members.append(s)
    out = []
    for bus, members in groups.items():
        first = members[0]
        ids = [s.id for s in members]
        if first.driver.family == "pca9685":
            args = {"addr": first.pca_addr, "channels": ids}
        else:
            args = {"ids": ids, "model": first.model}
        out.append({"module": first.driver.module, "cls": first.driver.cls, "bus": bus,
                    "joints": [s.motor for s in members], "args": args})
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
            if isinstance(x, bool) or not isinstance(x, (int, float)) or abs(x) > Q12_LIMIT:
                src.fail("%s[%d]" % (where, j), "must be a number within +-%.2f, got %r"
                         % (Q12_LIMIT, x))
            q12.append(round(x * 4096))
        bound = sum(abs(v) * max(abs(jt["min_cdeg"]), abs(jt["max_cdeg"]))
                    for v, jt in zip(q12, joints))
        if bound >= COUPLING_BOUND:
            src.fail(where, "coefficients times joint ranges reach %d, over the 2^%d the "
                     "board's integer arithmetic allows" % (bound, COUPLING_BOUND.bit_length() - 1))
        if not any(q12):
            src.fail(where, "motor %s is driven by no joint" % motors[m]["name"])
        rows.append(q12)
    b = src.get(c, "b_deg", "coupling", list, [0.0] * len(motors))
    if len(b) != len(motors):
        src.fail("coupling.b_deg", "needs one value per motor (%d), got %d" % (len(motors), len(b)))
    b_cdeg = []
    for m, x in enumerate(b):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or abs(x) > CDEG_LIMIT:
            src.fail("coupling.b_deg[%d]" % m, "must be a number within +-%.2f, got %r"
                     % (CDEG_LIMIT, x))
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
        joint["zero_turn16"] = src.limited(c, "zero_turn16", field, JOINT_LIMITS["zero_turn16"])
        joint["direction"] = src.direction(c, field)
        if "range_deg" in c:
            lo, hi = src.range_cdeg(c, "range_deg", field)
            lo, hi = max(lo, joint["min_cdeg"]), min(hi, joint["max_cdeg"])
            if lo >= hi:
                src.fail(field + ".range_deg", "does not overlap the hand's range [%g, %g] deg"
                         % (joint["min_cdeg"] / 100, joint["max_cdeg"] / 100))
            joint["min_cdeg"], joint["max_cdeg"] = lo, hi
    return {"file": cal_path.name, "updated": str(t.get("updated", "")), "joints": sorted(table)}


def load_hand(hand: str | Path) -> dict:
    """A hand file's table (a shipped hand's name or a path), its joints checked to be
    1..MAX_JOINTS tables with names: what commands that only need the joints (names,
    fingers) rely on. compile_config checks the rest."""
    path = hand_path(hand)
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


def _loop(src, t) -> dict:
    """The config's loop section from the hand's [loop], within the board's limits."""
    loop = src.get(t, "loop", "", dict, {})
    out = {name: src.limited(loop, name, "loop", LOOP_LIMITS[name], default)
           for name, default in LOOP_DEFAULTS.items()}
    out["watchdog_action"] = WATCHDOG_ACTIONS[
        src.choice(loop, "watchdog_action", "loop", WATCHDOG_ACTIONS, "hold")]
    return out


def _motor_servos(src, t, buses) -> list[ServoPlace]:
    """A coupled hand's [[motors]], each with its servo."""
    servos = []
    for m, mt in enumerate(src.get(t, "motors", "", list)):
        field = "motors[%d]" % m
        if not isinstance(mt, dict):
            src.fail(field, "must be a table")
        name = src.get(mt, "name", field, str)
        s = src.get(mt, "servo", field, dict)
        servos.append(_servo(src, s, field + ".servo", buses, m, name))
    if not 1 <= len(servos) <= MAX_JOINTS:
        src.fail("motors", "a hand has 1..%d motors, got %d" % (MAX_JOINTS, len(servos)))
    return servos


def compile_config(hand: str | Path, board_name: str | Path,
                   calibration: str | Path | bool | None = None) -> dict:
    """The firmware's config for a hand on a board; raises HwConfigError naming the field.

    hand, board_name: a name of one that comes with dexlink ("iso16", "pico") or a path.
    calibration: a calibration file to merge; None: HAND.calibration.toml next to the
    hand file when there is one; False: none (the hand file's encoder values).
    """
    board = load_board(board_name)
    path = hand_path(hand)
    src = _Src(path)
    t = load_hand(path)
    cfg = {"format": FORMAT, "hand": src.get(t, "name", "", str), "board": board,
           "loop": _loop(src, t)}
    joints, places, servos = [], [], []
    names = {}
    buses = board["buses"]
    coupled = "motors" in t
    for i, j in enumerate(t["joints"]):
        field = "joints[%d]" % i
        joint, place = _joint(src, j, field, buses, i)
        if joint["name"] in names:
            src.fail(field + ".name",
                     "%r is already joints[%d]" % (joint["name"], names[joint["name"]]))
        names[joint["name"]] = i
        joints.append(joint)
        places.append(place)
        if coupled:
            if "servo" in j:
                src.fail(field + ".servo", "a coupled hand drives [[motors]], not joints")
        else:
            s = src.get(j, "servo", field, dict)
            servos.append(_servo(src, s, field + ".servo", buses, len(servos), joint["name"]))
    if coupled:
        servos = _motor_servos(src, t, buses)
    elif "coupling" in t:
        src.fail("coupling",
                 "a coupling needs [[motors]]; joints with servos are driven one to one")
    motors = [dict(name=s.name, **s.motor_fields) for s in servos]
    cfg["joints"] = joints
    cfg["motors"] = motors
    cfg["coupling"] = _coupling(src, t, joints, motors) if coupled else None
    cfg["encoders"] = _encoder_groups(src, places)
    cfg["servos"] = _servo_groups(src, servos)
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
        _BOARD.check(cfg)
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


# The firmware polls the servo buses at most this often (firmware/dexfw/loop.py
# READBACK_HZ: every other cycle at 1 kHz); tests/test_hwconfig.py keeps the two equal.
READBACK_HZ = 500


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
    polled = 1.0 / max(1, cfg["loop"]["hz"] // READBACK_HZ)  # cycles with a servo read-back
    for g in cfg["servos"]:
        b = buses[g["bus"]]
        n = len(g["joints"])
        if g["cls"] == "FeetechBus":
            # SYNC_WRITE of 2-byte goals, plus one servo's READ + status reply a poll.
            nbytes = 8 + 3 * n + (8 + 8) * polled
        elif g["cls"] == "DynamixelBus":
            # SYNC_WRITE of 4-byte goals, plus one READ (14 B) + status (15 B) a poll.
            nbytes = 14 + 5 * n + (14 + 15) * polled
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
        epilog="example: python -m dexlink.hwconfig iso16 pico -o dexlink.json\n"
               "example: python -m dexlink.hwconfig my/iso16.toml pico --calibration "
               "my/iso16.calibration.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("hand", help="hand name (%s) or a hand .toml"
                    % ", ".join(shipped_names(HANDS)))
    ap.add_argument("board", help="board name (%s) or a board .toml"
                    % ", ".join(shipped_names(BOARDS)))
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
