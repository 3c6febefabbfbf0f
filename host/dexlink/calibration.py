"""Calibration of the exoskeleton's encoders: the maths, the procedure on a board, and the
calibration file.

1. The operator holds the zero pose: each joint's zero is the mean raw encoder position.
2. The operator moves each joint through its range: the sweep gives the range, and which
   way the encoder turns (direction) by matching the sweep to the hand file's range.
A joint that did not move, or whose magnet was missing or weak, is refused. The result
goes to HAND.calibration.toml next to the hand file (hwconfig.calibration_path; dated, per
joint, so a re-run for one finger keeps the others), and can be applied to the running
board with SET_JOINT. `dexlink calibrate` is this module behind options.
"""
from __future__ import annotations

import datetime
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dexlink import hwconfig
from dexlink.errors import UserError
from dexlink.link import LinkError
from dexproto import catalog

TURN = 65536
BAD_MAGNET = catalog.ST_MAGNET_MISSING | catalog.ST_MAGNET_WEAK | catalog.ST_ENCODER_ERROR
MIN_MOVE_DEG = 5.0  # a sweep smaller than this is "did not move"
ZERO_SPREAD_DEG = 3.0  # the zero pose must be held this still
SIM_SETTLE_S = 0.2  # after the simulated operator is asked: RAW_SAMPLEs already sent drain


class CalibrationError(UserError):
    """A calibration that cannot be made: the message names the file or what to do."""


# -- the maths ------------------------------------------------------------------------
def wrap16(d: int) -> int:
    """A turn16 difference folded into [-32768, 32767]."""
    return (d + 32768) % TURN - 32768


def circular_mean_turn16(raws) -> int:
    """Mean position on the circle (a zero near 0/360 averages right)."""
    s = sum(math.sin(r * 2 * math.pi / TURN) for r in raws)
    c = sum(math.cos(r * 2 * math.pi / TURN) for r in raws)
    return round(math.atan2(s, c) * TURN / (2 * math.pi)) % TURN


@dataclass
class HandJoint:
    index: int
    name: str
    finger: str
    range_deg: tuple[float, float]
    direction: int  # the hand file's encoder direction (kept when the sweep cannot tell)
    scale: float
    max_speed_dps: float = 360.0


@dataclass
class JointCalibration:
    joint: HandJoint
    zero_turn16: int = 0
    direction: int = 1
    range_deg: tuple[float, float] = (0.0, 0.0)
    refused: str = ""  # why the joint was refused ("" when calibrated)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.refused


def hand_joints(path: Path) -> list[HandJoint]:
    """The joints of a hand file (hwconfig.load_hand), with what calibration needs; errors
    name the file and field."""
    joints = []
    for i, j in enumerate(hwconfig.load_hand(path)["joints"]):
        field = "%s: joints[%d]" % (path, i)
        try:
            lo, hi = (float(v) for v in j["range_deg"])
            enc = j.get("encoder", {})
            joints.append(HandJoint(i, str(j["name"]), str(j.get("finger", "")), (lo, hi),
                                    -1 if enc.get("direction", 1) < 0 else 1,
                                    float(enc.get("scale", 1.0)),
                                    float(j.get("max_speed_dps", 360.0))))
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError("%s: needs name and range_deg = [min, max] (%s)"
                                   % (field, e)) from None
    return joints


def on_fingers(joints: list[HandJoint], fingers: list[str] | None, hand: Path) -> list[HandJoint]:
    """The joints on these fingers (all for None); none at all is an error naming the hand's."""
    chosen = [j for j in joints if not fingers or j.finger in fingers]
    if not chosen:
        raise CalibrationError("%s: no joints on finger(s) %s; the hand has %s"
                               % (hand, ", ".join(fingers), ", ".join(sorted({j.finger for j in joints}))))
    return chosen


def calibrate_joint(joint: HandJoint, zero_raws, zero_status, sweep_raws, sweep_status) -> JointCalibration:
    """Zero, direction and range of one joint from its raw samples (turn16) and status bits."""
    cal = JointCalibration(joint)
    bad = [s for s in list(zero_status) + list(sweep_status) if s & BAD_MAGNET]
    if bad:
        cal.refused = "magnet unhealthy (%s in %d of %d samples): check the magnet and its gap" % (
            _magnet_words(bad), len(bad), len(zero_status) + len(sweep_status))
        return cal
    if not zero_raws or not sweep_raws:
        cal.refused = "no encoder samples received"
        return cal
    zero = circular_mean_turn16(zero_raws)
    spread = max(abs(wrap16(r - zero)) for r in zero_raws) * 360 / TURN
    if spread > ZERO_SPREAD_DEG:
        cal.refused = "moved %.1f deg while the zero pose was held: hold still and re-run" % spread
        return cal
    deg = [wrap16(r - zero) * 360 / TURN * joint.scale for r in sweep_raws]
    lo, hi = min(deg), max(deg)
    if hi - lo < MIN_MOVE_DEG:
        cal.refused = "did not move (%.1f deg over the sweep): move it through its whole range" % (hi - lo)
        return cal
    cal.zero_turn16 = zero
    cal.direction = _direction(joint, lo, hi, cal)
    a, b = sorted((cal.direction * lo, cal.direction * hi))
    cal.range_deg = (round(a, 2), round(b, 2))
    return cal


def _direction(joint: HandJoint, lo: float, hi: float, cal: JointCalibration) -> int:
    """+1 when the encoder turns the way the joint's angle grows.

    The hand file's range says which side of zero the joint mostly travels (flexion:
    [-10, 90]); the sweep says which way the encoder went furthest. A symmetric range
    (abduction: [-20, 20]) cannot tell: the hand file's direction stays.
    """
    rlo, rhi = joint.range_deg
    if min(abs(rlo), abs(rhi)) > 0.6 * max(abs(rlo), abs(rhi)) or max(abs(lo), abs(hi)) == 0:
        cal.note = "symmetric range: direction kept from the hand file"
        return joint.direction
    joint_side = 1 if abs(rhi) > abs(rlo) else -1
    sweep_side = 1 if abs(hi) > abs(lo) else -1
    return joint_side * sweep_side


def _magnet_words(statuses) -> str:
    bits = 0
    for s in statuses:
        bits |= s
    words = [w for b, w in ((catalog.ST_MAGNET_MISSING, "missing"), (catalog.ST_MAGNET_WEAK, "weak"),
                            (catalog.ST_ENCODER_ERROR, "encoder error")) if bits & b]
    return "/".join(words)


# -- the calibration file -------------------------------------------------------------
def _merged_limits(hand: Path, joints: list[HandJoint]) -> list[dict]:
    """The hand's joint limits with HAND.calibration.toml merged in, as `dexlink flash`
    merges it (hwconfig.apply_calibration); errors name the calibration file and field."""
    merged = [{"name": j.name, "min_cdeg": round(j.range_deg[0] * 100),
               "max_cdeg": round(j.range_deg[1] * 100)} for j in joints]
    path = hwconfig.calibration_path(hand)
    if path.exists():
        hwconfig.apply_calibration(merged, path)
    return merged


def check_existing_calibration(hand: Path, joints: list[HandJoint]) -> None:
    """Refuse an HAND.calibration.toml that `dexlink flash` could not merge, before the
    board is touched: no sweep is spent on a file the new results cannot join."""
    try:
        _merged_limits(hand, joints)
    except hwconfig.HwConfigError as e:
        raise CalibrationError("%s (move the file away and re-run)" % e) from None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_calibration(hand: Path, results: list[JointCalibration], when: str | None = None) -> Path:
    """Merge the calibrated joints into HAND.calibration.toml (other joints are kept), dated
    `when` (default: now, UTC); returns its path."""
    when = when or utc_now()
    path = hwconfig.calibration_path(hand)
    joints = hwconfig.read_toml(path).get("joints", {}) if path.exists() else {}  # checked at start
    for c in results:
        if c.ok:
            joints[c.joint.name] = {
                "index": c.joint.index, "finger": c.joint.finger,
                "zero_turn16": c.zero_turn16, "zero_deg": round(c.zero_turn16 * 360 / TURN, 3),
                "direction": c.direction, "range_deg": list(c.range_deg), "date": when}
    lines = ["# Encoder calibration for %s, written by `dexlink calibrate`." % hand.name,
             "# zero_turn16 / zero_deg: raw encoder position at joint zero; direction: +1 when",
             "# the encoder turns the way the joint angle grows; range_deg: the range swept.",
             'hand = "%s"' % hand.name, 'updated = "%s"' % when, ""]
    for name, j in sorted(joints.items(), key=lambda kv: kv[1].get("index", 0)):
        lines.append('[joints."%s"]' % name)
        for key in ("index", "finger", "zero_turn16", "zero_deg", "direction", "range_deg", "date"):
            if key in j:
                lines.append("%s = %s" % (key, _toml_value(j[key])))
        lines.append("")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, list):
        return "[%s]" % ", ".join(_toml_value(x) for x in v)
    return repr(v)


# -- the guided procedure -------------------------------------------------------------
class Operator:
    """Tells the operator what to do; waits for Enter unless non-interactive.

    On a virtual board (`board`), the simulated operator is asked to do it (holds the zero
    pose, sweeps the fingers), so a calibration runs end to end without a person.
    """

    def __init__(self, interactive: bool, out=None, board=None):
        self.interactive = interactive
        self.out = out or sys.stdout  # looked up now: sys.stdout may be replaced after import
        self.board = board

    def step(self, text: str, behaviour: str = "", fingers: list[str] = ()) -> None:
        print(text, file=self.out)
        if self.board is not None and behaviour:
            self._ask(behaviour, fingers)
            time.sleep(SIM_SETTLE_S)
        elif self.interactive:
            input("  press Enter when ready ")
        self.out.flush()

    def _ask(self, behaviour: str, fingers) -> None:
        """The simulated operator moves one finger, or all of them: for several fingers, or
        one it does not know by name (a hand's own finger names), all."""
        if len(fingers) == 1:
            try:
                return self.board.operator(behaviour, fingers[0])
            except ValueError:
                pass
        self.board.operator(behaviour)

    def done(self) -> None:
        if self.board is not None:
            self.board.operator("demo")


def collect(sub, n_joints: int, seconds: float):
    """RAW_SAMPLE raw positions and status per joint for `seconds`."""
    raws = [[] for _ in range(n_joints)]
    statuses = [[] for _ in range(n_joints)]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m = sub.get(timeout=0.05)
        if m is None or len(m.items) != n_joints:
            continue
        for j, (raw, status) in enumerate(m.items):
            raws[j].append(raw)
            statuses[j].append(status)
    return raws, statuses


def run_procedure(link, hand: Path, joints: list[HandJoint], chosen: list[HandJoint],
                  operator: Operator, zero_s: float, sweep_s: float) -> list[JointCalibration]:
    """Zero pose, then sweep, on the board in CALIBRATE mode (IDLE again after); the
    results for the `chosen` joints of the hand's `joints`."""
    if link.board.n_joints != len(joints):
        raise CalibrationError("the board runs %d joints but %s has %d: flash the board with "
                               "this hand" % (link.board.n_joints, hand, len(joints)))
    sub = link.subscribe("RAW_SAMPLE")
    link.set_mode(catalog.MODE_CALIBRATE)
    try:
        fingers = sorted({j.finger for j in chosen})
        names = ", ".join(fingers)
        operator.step("1/2  Hold the zero pose (%s): fingers straight and together, still."
                      % names, "zero")
        sub.drain()
        zero = collect(sub, len(joints), zero_s)
        operator.step("2/2  Move each joint of %s slowly through its whole range, "
                      "one after the other." % names, "sweep", fingers)
        sub.drain()
        sweep = collect(sub, len(joints), sweep_s)
    finally:
        operator.done()
        link.set_mode(catalog.MODE_IDLE)
    return [calibrate_joint(j, zero[0][j.index], zero[1][j.index], sweep[0][j.index],
                            sweep[1][j.index]) for j in chosen]


def apply_to_board(link, results: list[JointCalibration], hand: Path,
                   joints: list[HandJoint]) -> str:
    """Send the calibrated joints to the running board, as `dexlink flash` would merge
    them; "" when it took them all, else why not (they then apply at the next flash)."""
    try:
        merged = _merged_limits(hand, joints)
    except hwconfig.HwConfigError as e:
        raise CalibrationError(str(e)) from None
    for c in results:
        if not c.ok:
            continue
        j = merged[c.joint.index]
        try:
            link.set_joint(c.joint.index, zero_turn16=j["zero_turn16"], direction=j["direction"],
                           scale_q12=round(c.joint.scale * 4096), min_cdeg=j["min_cdeg"],
                           max_cdeg=j["max_cdeg"],
                           max_speed_cdeg_per_ms=round(c.joint.max_speed_dps / 10))
        except LinkError as e:
            return "the board did not take %s's calibration (%s)" % (c.joint.name, e)
    return ""
