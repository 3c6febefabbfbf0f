"""`dexlink teleop`: drive the hand from the exoskeleton (on the board) or from a host input
(VR headset, glove, webcam, recording) through retargeting (dexlink.teleop)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

from dexlink.board import connect, default_hand, resolve_hand
from dexlink.cli_support import add_board_args, add_world_args, board_options, world_options
from dexlink.errors import UserError
from dexlink.inputs.spec import INPUT_HELP, parse_input
from dexlink.inputs.udp import LOOPBACK
from dexlink.retarget import METHODS
from dexproto import catalog


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "teleop", help="drive the hand from the exoskeleton, a VR headset, a glove or a webcam",
        description="Teleoperate the hand. --input exo is the exoskeleton: the board maps its "
                    "joints to the hand's itself (TELEOP mode, no host in the loop). Every other "
                    "input is a human hand tracked on the host: its frames are retargeted to the "
                    "hand's joints and streamed in HOST mode at --rate Hz (timed points the "
                    "firmware interpolates when it takes them, else plain targets). When the "
                    "input stops or sends only bad frames the hand holds its pose. Listeners "
                    "bind to 127.0.0.1 unless --bind names another address. Inputs: " + INPUT_HELP,
        epilog="examples:\n"
               "  dexlink teleop --input exo --port /dev/ttyACM0\n"
               "  dexlink teleop --input glove --sim                 # Rokoko Studio on udp 14043\n"
               "  dexlink teleop --input xr --sim --bind 0.0.0.0  # then https://HOST:8443/ on the headset\n"
               "  dexlink teleop --input avp:192.168.1.20 --port /dev/ttyACM0 --hand iso16\n"
               "  dexlink teleop --input camera --sim --world lift_cube\n"
               "  dexlink teleop --input file:hands.jsonl --sim --stats stats.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, metavar="INPUT", help=INPUT_HELP)
    add_board_args(p)
    add_world_args(p)
    p.add_argument("--bind", default=LOOPBACK, metavar="ADDR",
                   help="address the input's listener binds to (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--listen-port", type=int, metavar="P",
                   help="the input's own port (default: xr 8443, glove 14043, glove:udp 14044)")
    p.add_argument("--side", choices=("right", "left"), default="right",
                   help="the operator's hand that drives the robot's (default right)")
    p.add_argument("--method", choices=METHODS, default="vector",
                   help="retargeting optimiser (default vector)")
    p.add_argument("--rate", type=float, default=100.0, metavar="HZ",
                   help="goals sent per second (default 100)")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--loop", action="store_true", help="with file:PATH, replay it again and again")
    p.add_argument("--stats", type=Path, metavar="FILE.json",
                   help="write the session's counters and latencies here at the end")
    p.set_defaults(func=teleop)


def teleop(args) -> int:
    spec = parse_input(args.input)
    if not args.rate >= 100.0 and spec.kind != "exo":
        raise UserError("--rate must be at least 100 Hz (got %g)" % args.rate)
    if args.world and not args.sim:
        raise UserError("--world needs --sim: a world runs under the virtual board")
    board = dataclasses.replace(board_options(args), world=world_options(args))
    if spec.kind == "exo":
        return _exo(board, args.seconds)
    return _host_input(args, spec, board)


def _until(seconds, done=lambda: False, every=None):
    """Wait for Ctrl-C, SIGTERM, `seconds` or done(), calling every() once a second."""
    deadline = None if seconds is None else time.monotonic() + seconds

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        next_report = time.monotonic() + 1.0
        while not done() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
            if every is not None and time.monotonic() >= next_report:
                next_report += 1.0
                every()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exo(board_opts, seconds) -> int:
    with connect(board_opts) as board:
        link = board.link
        telemetry = link.subscribe("TELEMETRY")
        link.set_mode(catalog.MODE_TELEOP)
        print("teleop from the exoskeleton on %s (TELEOP mode on the board); Ctrl-C stops"
              % link.url, flush=True)
        started = time.monotonic()
        samples = [0]

        def count():  # the board's own word that it drives the hand (drained once a second)
            while (msg := telemetry.get(timeout=0)) is not None:
                samples[0] += msg.fields["mode"] == catalog.MODE_TELEOP

        try:
            _until(seconds, every=count)
        finally:
            link.set_mode(catalog.MODE_IDLE)
        count()
        link.unsubscribe(telemetry)
    print("the board drove the hand from the exoskeleton for %.1f s (%d telemetry samples "
          "in TELEOP mode)" % (time.monotonic() - started, samples[0]))
    return 0


def _host_input(args, spec, board_opts) -> int:
    from dexlink.inputs.spec import open_input
    from dexlink.teleop import TeleopOptions, TeleopSetup, open_teleop

    # The hand is known before the board: a missing --hand fails before anything starts.
    if board_opts.hand is None and not board_opts.virtual:
        raise UserError("--input %s retargets to the hand's model: name it with --hand" % spec)
    hand = resolve_hand(board_opts.hand) if board_opts.hand else default_hand()
    board_opts = dataclasses.replace(board_opts, hand=hand)
    hand_input = open_input(spec, bind=args.bind, port=args.listen_port, loop=args.loop)
    setup = TeleopSetup(str(spec), method=args.method, session=TeleopOptions(side=args.side,
                                                                            rate_hz=args.rate))
    with connect(board_opts) as board:
        session = open_teleop(board, setup, hand_input=hand_input)
        link = board.link
        link.set_mode(catalog.MODE_HOST)
        try:
            session.start()
            print("teleop from %s -> %s (HOST mode, %s, %s retargeting); Ctrl-C stops"
                  % (hand_input.describe(), link.url, "timed points" if session.timed else "targets",
                     args.method), flush=True)
            finished = getattr(hand_input, "finished", None)  # a recording replayed to its end
            failed = getattr(hand_input, "failed", lambda: "")  # a worker process that died
            _until(args.seconds, done=lambda: (finished is not None and finished.is_set()) or failed(),
                   every=lambda: print(session.status_line(), flush=True))
        finally:
            session.stop()
            link.set_mode(catalog.MODE_IDLE)
        if failed():
            raise UserError("--input %s: %s" % (spec, failed()))
        stats = session.stats()
        world = board.virtual.world if board.virtual is not None else None
        if world is not None:
            stats["world"] = {"task": world.task.name, "verdict": world.judge() or "undecided",
                              "simulation": True}
    _report(stats, args.stats)
    return 0


def _report(stats: dict, path: Path | None) -> None:
    i = stats["input"]
    lat = stats["latency"]
    print("input: %d received, dropped %d malformed, %d stale, %d flood%s" % (
        i["received"], i["dropped_malformed"], i["dropped_stale"], i["dropped_flood"],
        " (last: %s)" % i["last_problem"] if i["last_problem"] else ""))
    print("frames retargeted %d (%d failed), goals sent %d at %.0f/s (%d late, dropped), holds %d"
          % (stats["frames_used"], stats["retarget_failed"], stats["sent"], stats["send_rate_hz"],
             stats["points_dropped"], stats["holds"]))
    for stage in ("retarget_ms", "send_ms", "servo_ms", "end_to_end_ms"):
        s = lat[stage]
        if s.get("n"):
            print("  %-14s p50 %7.2f  p99 %7.2f  max %7.2f ms  (n=%d)" % (
                stage, s["p50"], s["p99"], s["max"], s["n"]))
    if "world" in stats:
        print("world (simulation): %s %s" % (stats["world"]["task"], stats["world"]["verdict"]))
    if path is not None:
        try:
            path.write_text(json.dumps(stats, indent=2) + "\n")
        except OSError as e:
            raise UserError("cannot write %s: %s" % (path, e.strerror or e)) from None
    sys.stdout.flush()
