"""`dexlink calibrate`: guided calibration of the exoskeleton's encoders (dexlink.calibration
behind options: the procedure, the maths and the file are there)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dexlink import calibration
from dexlink.board import connect, hand_file
from dexlink.calibration import TURN, JointCalibration
from dexlink.cli_support import add_board_args, board_options


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="guided encoder calibration: zero pose, then range sweep",
        description="Calibrate the exoskeleton's encoders: hold the zero pose, then move each "
                    "joint through its range. Writes zero, direction and range per joint to "
                    "HAND.calibration.toml next to the hand file (dated), and applies them to "
                    "the board. Joints that did not move or whose magnet is unhealthy are "
                    "refused (exit status 1). Re-run for one finger with --finger.",
        epilog="examples:\n  dexlink calibrate --port /dev/ttyACM0 --hand hardware/hands/iso16.toml\n"
               "  dexlink calibrate --port /dev/ttyACM0 --hand hardware/hands/iso16.toml --finger index\n"
               "  dexlink calibrate --sim --hand hardware/hands/iso16.toml --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_args(p, hand_required=True)
    p.add_argument("--finger", action="append", metavar="FINGER",
                   help="calibrate only this finger's joints (repeatable); others are kept")
    p.add_argument("--yes", action="store_true",
                   help="non-interactive: do not wait for Enter (scripts, simulated operator)")
    p.add_argument("--zero-seconds", type=float, default=2.0, metavar="S",
                   help="how long the zero pose is sampled (default 2)")
    p.add_argument("--sweep-seconds", type=float, default=10.0, metavar="S",
                   help="how long the range sweep is sampled (default 10)")
    p.add_argument("--no-apply", action="store_true", help="write the file but do not send it to the board")
    p.set_defaults(func=calibrate)


def calibrate(args) -> int:
    options = board_options(args)
    hand = hand_file(options)
    joints = calibration.hand_joints(hand)
    calibration.check_existing_calibration(hand, joints)
    chosen = calibration.on_fingers(joints, args.finger, hand)
    with connect(options) as board:
        operator = calibration.Operator(interactive=not args.yes and sys.stdin.isatty(),
                                        board=board.virtual)
        results = calibration.run_procedure(board.link, hand, joints, chosen, operator,
                                            args.zero_seconds, args.sweep_seconds)
        path = calibration.write_calibration(hand, results)
        report(results, path)
        if not args.no_apply:
            problem = calibration.apply_to_board(board.link, results, hand, joints)
            if problem:
                print("  note: %s; it applies at the next flash" % problem)
    return 0 if all(c.ok for c in results) else 1


def report(results: list[JointCalibration], path: Path) -> None:
    for c in results:
        if c.ok:
            print("  ok      %-18s zero %6.2f deg  direction %+d  range %7.2f .. %7.2f deg%s" % (
                c.joint.name, c.zero_turn16 * 360 / TURN, c.direction, c.range_deg[0],
                c.range_deg[1], "  (%s)" % c.note if c.note else ""))
        else:
            print("  REFUSED %-18s %s" % (c.joint.name, c.refused))
    good = sum(c.ok for c in results)
    print("%d of %d joints calibrated; written to %s" % (good, len(results), path))
