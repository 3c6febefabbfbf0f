"""`dexlink model`: a hand file's body as a MuJoCo MJCF or a URDF file."""
from __future__ import annotations

import argparse
from pathlib import Path

from dexlink.errors import UserError, error_text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model", help="write a hand's physical model as MuJoCo MJCF or URDF",
        description="Build the hand described by a hand file (its [geometry] table, joints and "
                    "motors) as a simulation model: MJCF for MuJoCo (capsule links, position "
                    "servos with the servo model's gain and stall torque, a tendon hand's "
                    "motors as fixed tendons from its coupling matrix, a floor and a light) or "
                    "URDF (for ROS, retargeting libraries and visualisers; the same frames, "
                    "masses and names).",
        epilog="examples:\n  dexlink model --hand hardware/hands/iso16.toml --format mjcf "
               "--out iso16.xml\n  dexlink model --hand tendon16 --format urdf --out tendon16.urdf",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hand", required=True, metavar="HAND.toml",
                   help="a hand file, or the name of a shipped hand (iso16, iso22, tendon16)")
    p.add_argument("--format", choices=["mjcf", "urdf"], default="mjcf",
                   help="model format (default mjcf)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write it")
    p.set_defaults(func=model_command)


def model_command(args) -> int:
    from dexlink.hwconfig import hand_path

    path = hand_path(args.hand)
    if args.format == "mjcf":
        from dexlink.world.mjcf import hand_mjcf
        text = hand_mjcf(path)
    else:
        from dexlink.world.urdf import hand_urdf
        text = hand_urdf(path)
    try:
        args.out.write_text(text)
    except OSError as e:
        raise UserError("cannot write %s" % error_text(e)) from None
    print("wrote %s (%s) for %s" % (args.out, args.format.upper(), path))
    return 0
