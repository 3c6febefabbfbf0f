"""What the `dexlink` commands share: how a board is named on the command line, how a
virtual board is served, and how a user's error is shown. The work itself is in the
library (dexlink.board, dexlink.calibration, dexlink.record.recording); exit statuses are
decided once, in dexlink.cli.main."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from dexlink.board import DEFAULT_HAND, BoardOptions
from dexlink.link import DEFAULT_BAUD
from dexproto import catalog

MODES = {name.lower(): i for i, name in enumerate(catalog.MODE_NAMES)}  # --mode NAME -> mode


def add_board_args(p: argparse.ArgumentParser, hand_required: bool = False) -> None:
    """--port URL | --sim, --baud, --hand: how every board command finds its board."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="URL",
                       help="serial port or pyserial URL: /dev/ttyACM0, socket://host:port")
    where.add_argument("--sim", action="store_true",
                       help="start a virtual board (the real firmware on MicroPython) and use it")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="baud rate (default %(default)s)")
    p.add_argument("--hand", metavar="HAND.toml", required=hand_required,
                   help="hand description (joint names; with --sim, the hand to simulate; "
                        "default: hardware/hands/%s.toml)" % DEFAULT_HAND)
    add_target_arg(p)


def add_target_arg(p: argparse.ArgumentParser) -> None:
    """--target BOARD: the real board a virtual one runs as (dexlink.targets)."""
    from dexlink.targets import TARGETS, VIRTUAL
    p.add_argument("--target", choices=[*TARGETS, VIRTUAL], metavar="BOARD",
                   help="with --sim: run at the speed of this board (%s; %s: this host's full "
                        "speed; default: the board the hand names, else %s)"
                        % (", ".join(TARGETS), VIRTUAL, VIRTUAL))


def board_options(args: argparse.Namespace) -> BoardOptions:
    """The board named by add_board_args' options."""
    if getattr(args, "target", None) and not args.sim:
        from dexlink.errors import UserError
        raise UserError("--target goes with --sim: a real board runs at its own speed")
    return BoardOptions(port=None if args.sim else args.port,
                        hand=Path(args.hand) if args.hand else None, baud=args.baud,
                        target=getattr(args, "target", None))


def add_world_args(p: argparse.ArgumentParser) -> None:
    """--world TASK, --world-seed, --skill: a physics world under the virtual board."""
    p.add_argument("--world", metavar="TASK",
                   help="run the virtual board in a physics world doing TASK (dexlink world "
                        "--list names them): the world's operator, cameras and verdict")
    p.add_argument("--world-seed", type=int, default=0, metavar="S",
                   help="the world's seed: the task's initial state (default 0)")
    p.add_argument("--skill", type=float, default=0.8, metavar="K",
                   help="the world operator's skill, 0..1 (default 0.8)")


def world_options(args: argparse.Namespace):
    """The WorldOptions of add_world_args' options (None without --world); an unknown task
    or a skill out of 0..1 is a UserError, before any board is started."""
    if not args.world:
        return None
    from dexlink.errors import UserError
    if not 0 <= args.skill <= 1:
        raise UserError("--skill must be between 0 and 1 (got %g)" % args.skill)
    try:
        from dexlink.sim.worldbridge import WorldOptions
        from dexlink.world import tasks
    except ImportError as e:
        raise UserError("physics worlds are not available in this installation (%s)" % e) from None
    tasks.get(args.world)  # UnknownTask lists the tasks
    return WorldOptions(args.world, seed=args.world_seed, skill=args.skill)


def print_error(command: str, message: object) -> None:
    """A user's error, as every command shows one: `dexlink COMMAND: message` on stderr."""
    print("dexlink %s: %s" % (command, message), file=sys.stderr)


def print_flash_progress(line: str) -> None:
    print("flash: " + line, flush=True)


def serve(board, seconds: float | None = None, hints=()) -> None:
    """Print a virtual board's port (and the lines in `hints`) and keep it up until Ctrl-C,
    SIGTERM or `seconds`."""
    print(board.port, flush=True)
    print("virtual board running on %s (filesystem %s); Ctrl-C stops it"
          % (board.port, board.fs_dir), flush=True)
    for line in hints:
        print(line, flush=True)
    deadline = None if seconds is None else time.monotonic() + seconds

    def stop(signum, frame):
        raise KeyboardInterrupt  # SIGTERM too: close the board and remove its temp files

    signal.signal(signal.SIGTERM, stop)
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass


def add_foxglove_arg(p: argparse.ArgumentParser) -> None:
    """--foxglove [PORT]: a live view in Foxglove, on localhost."""
    p.add_argument("--foxglove", nargs="?", type=int, const=8765, metavar="PORT",
                   help="serve a live view to Foxglove (WebSocket, localhost only) on PORT "
                        "(default 8765): joints, images, contact, events, the hand in 3D")


def tactile_spec(text: str):
    """--tactile NAME=DEVICE[:PRESET] (record, run-policy): a TactileCameraSpec."""
    from dexlink.errors import UserError
    from dexlink.record.recording import TactileCameraSpec

    name, sep, dev = text.partition("=")
    if not sep or not name or not dev:
        raise UserError("--tactile %r: expected NAME=DEVICE[:PRESET], e.g. "
                        "index=/dev/video2:digit" % text)
    device, _, preset = dev.partition(":")
    return TactileCameraSpec(name, device, preset or "digit")


def add_policy_episode_args(p: argparse.ArgumentParser) -> None:
    """How a policy's episodes run (run-policy, eval)."""
    p.add_argument("--max-seconds", type=float, metavar="T",
                   help="end an episode after T seconds (default: when the world decides; "
                        "20 s without a world)")
    p.add_argument("--inference-steps", type=int, metavar="N",
                   help="DDIM steps per chunk (default: the run's)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads for inference (default 1: the board and world keep a core)")


def check_policy_episode_args(args: argparse.Namespace) -> None:
    """add_policy_episode_args' options, refused in one line when out of range."""
    from dexlink.errors import UserError

    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UserError("--max-seconds must be positive")
    if args.inference_steps is not None and args.inference_steps < 1:
        raise UserError("--inference-steps must be at least 1")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")
