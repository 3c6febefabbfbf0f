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
                    "LeRobot v3.0 (parquet + H.264 mp4 per camera, files split by size as "
                    "LeRobot does; observation.state = present positions, action = goals, in "
                    "degrees; images under observation.images.*, all of one size by default, "
                    "as LeRobot's diffusion policy needs) or the diffusion-policy zarr replay "
                    "buffer (data/*, meta/episode_ends). Broken episodes are skipped and listed.",
        epilog="examples:\n  dexlink export sessions/cube --format lerobot --fps 30 --out "
               "datasets/cube\n  dexlink export sessions/cube2 --out datasets/cube --append\n"
               "  dexlink export sessions/cube --out datasets/cube96 --image-size 96x96 "
               "--cameras rgb,tactile_index\n  dexlink export sessions/cube --format zarr "
               "--out cube.zarr",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, metavar="SESSION_DIR", help="a recorded session")
    p.add_argument("--format", choices=["lerobot", "zarr"], default="lerobot",
                   help="dataset layout (default lerobot)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (replaced if it holds an earlier export, unless "
                        "--append)")
    p.add_argument("--robot-type", default="dexlink", help="LeRobot robot_type (default dexlink)")
    p.add_argument("--image-size", metavar="WxH",
                   help="resize every camera to this size, e.g. 320x240; `native` keeps each "
                        "camera's own (default: the smallest camera's size, or the dataset's "
                        "with --append)")
    p.add_argument("--cameras", metavar="NAMES",
                   help="the cameras to export, comma separated: rgb, tactile_index, ... (or "
                        "rgbd, index, ...); none for no images (default: all; with --append, "
                        "the dataset's)")
    p.add_argument("--append", action="store_true",
                   help="add the session's episodes to the LeRobot dataset in --out (its data "
                        "and video files are left as they are; new files follow them)")
    p.add_argument("--data-file-mb", type=float, default=None, metavar="MB",
                   help="start a new data parquet file past this size (default 100)")
    p.add_argument("--video-file-mb", type=float, default=None, metavar="MB",
                   help="start a new mp4 file past this size (default 200)")
    p.set_defaults(func=export_command)


def export_command(args) -> int:
    from dexlink.record.export import parse_cameras, parse_image_size
    from dexlink.record.lerobot_meta import DATA_FILE_MB, VIDEO_FILE_MB
    from dexlink.ui.reports import print_export

    if args.fps <= 0:
        raise UsageError("--fps must be positive")
    options = {"cameras": parse_cameras(args.cameras)}
    lerobot_only = {"--image-size": args.image_size, "--append": args.append or None,
                    "--data-file-mb": args.data_file_mb, "--video-file-mb": args.video_file_mb}
    if args.format == "zarr":
        given = [k for k, v in lerobot_only.items() if v is not None]
        if given:
            raise UsageError("%s: only for --format lerobot" % ", ".join(given))
    else:
        for name, mb in (("--data-file-mb", args.data_file_mb),
                         ("--video-file-mb", args.video_file_mb)):
            if mb is not None and not mb > 0:
                raise UsageError("%s must be positive" % name)
        options.update(image_size=parse_image_size(args.image_size), append=args.append,
                       data_file_mb=args.data_file_mb or DATA_FILE_MB,
                       video_file_mb=args.video_file_mb or VIDEO_FILE_MB)
    print_export(args.session, args.out, args.format, args.fps, args.robot_type, **options)
    return 0
