"""`dexlink export`: a session's episodes as a LeRobot dataset or a zarr replay buffer."""
from __future__ import annotations

import argparse
from pathlib import Path

from dexlink.errors import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a session to a LeRobot v3.0 dataset or a zarr replay buffer",
        description="Resample every episode of a session at --fps by capture time (the latest "
                    "sample at or before each frame time) and write a training dataset: "
                    "LeRobot v3.0 (parquet + one H.264 mp4 per camera; observation.state = "
                    "present positions, action = goals, in degrees; images under "
                    "observation.images.*) or the diffusion-policy zarr replay buffer "
                    "(data/*, meta/episode_ends). Broken episodes are skipped and listed.",
        epilog="examples:\n  dexlink export sessions/cube --format lerobot --fps 30 --out "
               "datasets/cube\n  dexlink export sessions/cube --format zarr --out cube.zarr",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, metavar="SESSION_DIR", help="a recorded session")
    p.add_argument("--format", choices=["lerobot", "zarr"], default="lerobot",
                   help="dataset layout (default lerobot)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (replaced if it exists)")
    p.add_argument("--robot-type", default="dexlink", help="LeRobot robot_type (default dexlink)")
    p.set_defaults(func=export_command)


def export_command(args) -> int:
    from dexlink.ui.reports import print_export

    if args.fps <= 0:
        raise UsageError("--fps must be positive")
    print_export(args.session, args.out, args.format, args.fps, args.robot_type)
    return 0
