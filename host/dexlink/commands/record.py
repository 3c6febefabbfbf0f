"""`dexlink record`: record multimodal episodes (telemetry, tactile, RGB-D) into a session
(dexlink.record.recording behind options, and keys on a terminal)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dexlink.cli_support import (
    MODES,
    add_board_args,
    add_foxglove_arg,
    add_world_args,
    board_options,
    tactile_spec,
    world_options,
)
from dexlink.errors import UsageError, UserError
from dexlink.inputs.spec import INPUT_HELP, parse_input
from dexlink.inputs.udp import LOOPBACK
from dexlink.record.recording import (
    DEFAULT_EPISODE_S,
    RecordOptions,
    open_recording,
)
from dexlink.retarget import METHODS
from dexlink.ui.reports import print_record_progress, print_record_result

KEYS_HELP = ("keys: s start, k stop and keep, d stop and discard, y mark success, "
             "n mark failure, q quit")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record", help="record episodes: joints, tactile and RGB-D frames on one clock",
        description="Record episodes into a session directory: one MCAP file per episode "
                    "(telemetry of every loop cycle, one channel per camera, contact measures, "
                    "events) and session.json, the index of the finished ones. On a terminal, keys drive "
                    "it (%s); otherwise each episode lasts --duration seconds. With --sim the "
                    "cameras are simulated from the hand's joint angles; with --sim --world TASK the "
        "board runs in a physics world, its cameras are the world's and the one episode "
        "lasts until the world judges the task, marked success or failure." % KEYS_HELP,
        epilog="examples:\n  dexlink record --sim --task 'pick the cube' --episodes 2 "
               "--duration 5 --out sessions/cube\n  dexlink record --port /dev/ttyACM0 "
               "--hand hardware/hands/iso16.toml --task grasp --tactile index=/dev/video2:digit "
               "--realsense\n  dexlink record --sim --world lift_cube --world-seed 3 --task lift "
        "--out sessions/lift",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_args(p)
    p.add_argument("--task", help="what the operator does, e.g. 'pick the cube' (required, "
                   "except with --world, where it defaults to the world's task name)")
    p.add_argument("--episodes", type=int, default=1, metavar="N",
                   help="episodes to record (default 1)")
    p.add_argument("--duration", type=float, default=DEFAULT_EPISODE_S, metavar="S",
                   help="seconds per episode when not interactive (default 10)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="session directory (default sessions/<date-time>)")
    p.add_argument("--mode", choices=["teleop", "host", "idle"],
                   help="board mode while recording (default teleop; host with a host --input)")
    p.add_argument("--input", metavar="INPUT",
                   help="what drives the hand: exo (the exoskeleton, default) or a host input "
                        "retargeted to the hand (%s); its frames, goals and latencies are "
                        "recorded too (see dexlink teleop)" % INPUT_HELP)
    p.add_argument("--bind", default=LOOPBACK, metavar="ADDR",
                   help="with --input: its listener's address (default 127.0.0.1)")
    p.add_argument("--listen-port", type=int, metavar="P", help="with --input: its own port")
    p.add_argument("--side", choices=("right", "left"), default="right",
                   help="with --input: the operator's hand that drives the robot's (default right)")
    p.add_argument("--method", choices=METHODS, default="vector",
                   help="with --input: the retargeting optimiser (default vector)")
    p.add_argument("--tactile", action="append", default=[], metavar="NAME=DEVICE[:PRESET]",
                   help="a visuotactile camera, e.g. index=/dev/video2:digit (presets: %s)"
                        % ", ".join(_presets()))
    p.add_argument("--realsense", nargs="?", const="", metavar="SERIAL",
                   help="an Intel RealSense RGB-D camera (optionally by serial number)")
    p.add_argument("--sim-cameras", action="store_true",
                   help="simulated tactile and RGB-D cameras (the default with --sim)")
    p.add_argument("--telemetry-hz", type=float, metavar="HZ",
                   help="telemetry samples per second (default: every loop cycle, e.g. 1000 "
                        "on iso16; lower it for smaller files)")
    p.add_argument("--no-keys", action="store_true", help="never read keys, even on a terminal")
    add_world_args(p)
    add_foxglove_arg(p)
    p.set_defaults(func=record)


def _presets():
    from dexlink.capture.tactile import PRESETS
    return PRESETS


def record(args) -> int:
    if args.episodes < 1 or args.duration <= 0:
        raise UserError("--episodes must be at least 1 and --duration positive")
    if args.telemetry_hz is not None and not args.telemetry_hz > 0:
        raise UserError("--telemetry-hz must be positive")
    if not args.task and not args.world:
        raise UsageError("--task is required (what the operator does, e.g. 'pick the cube')")
    if args.world and not args.sim:
        raise UserError("--world needs --sim: a world runs under the virtual board")
    world = world_options(args)
    if world is not None and args.episodes != 1:
        raise UserError("--world records one episode (it ends when the world judges the "
                        "task); for more, run again with other --world-seed values")
    board = dataclasses.replace(board_options(args), world=world)
    teleop = teleop_setup(args)
    mode = args.mode or ("host" if teleop is not None else "teleop")
    options = RecordOptions(
        task=args.task or args.world, out=args.out, board=board, episodes=args.episodes,
        duration_s=args.duration, mode=MODES[mode], teleop=teleop,
        tactile=tuple(tactile_spec(t) for t in args.tactile), realsense=args.realsense,
        sim_cameras=args.sim_cameras, telemetry_hz=args.telemetry_hz, foxglove=args.foxglove)
    with open_recording(options) as rec:
        if rec.live_text:
            print(rec.live_text, flush=True)
        if world is None and sys.stdin.isatty() and sys.stdout.isatty() and not args.no_keys:
            run_keys(rec.recorder, args.episodes)
        else:
            rec.run_timed(print_record_progress)
    result = rec.result()
    print_record_result(result)
    return 0 if result.ok else 1


def teleop_setup(args):
    """The host input of --input (None for the exoskeleton, which needs no host)."""
    if not args.input:
        return None
    spec = parse_input(args.input)
    if spec.kind == "exo":
        return None
    from dexlink.teleop import TeleopOptions, TeleopSetup

    return TeleopSetup(str(spec), method=args.method, bind=args.bind, listen_port=args.listen_port,
                       session=TeleopOptions(side=args.side))


def run_keys(recorder, episodes: int) -> None:
    """Episodes started, kept, discarded and marked by keys, until `episodes` are kept."""
    from dexlink.ui.dashboard import Keys

    kept = 0
    with Keys() as keys:
        print(KEYS_HELP)  # only now: keys typed before cbreak would be flushed away
        while kept < episodes:
            key = keys.read(0.2)
            recorder.check_cameras()
            if key == "q" or recorder.write_error():
                break
            if key == "s" and recorder.current is None:
                recorder.start_episode()
            elif key in ("k", "d") and recorder.current is not None:
                recorder.stop_episode(keep=key == "k")
                kept += key == "k"
            elif key in ("y", "n") and recorder.current is not None:
                recorder.mark(key == "y")
            sys.stdout.write("\r\x1b[2K%s  (%d/%d kept)" % (recorder.status_line(), kept,
                                                           episodes))
            sys.stdout.flush()
    print()
