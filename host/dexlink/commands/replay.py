"""`dexlink replay`: play an episode's joint targets to the hand in HOST mode.

The targets are the episode's recorded servo goals (joint frame, cdeg), from its
/telemetry channel, sent at the recorded timing (capture times on the host clock). Before
that the hand is ramped slowly from where it is to the first pose.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from dexproto import catalog

from dexlink.board import open_link
from dexlink.cli_support import add_board_args, board_options
from dexlink.errors import UserError

SEND_HZ = 100  # ramp steps per second


def load_targets(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(t_ns, targets cdeg n x joints) from an episode file's telemetry."""
    from dexlink.record.reader import read_episode

    if not path.is_file():
        raise UserError("%s: no such episode file" % path)
    try:
        ep = read_episode(path, keep=lambda topic: topic == "/telemetry")
    except Exception as e:  # the MCAP library raises many kinds; the user needs the file name
        raise UserError("%s: not a readable episode (%s)" % (path, e)) from None
    tele = ep.telemetry()
    if not tele or len(tele["t_ns"]) < 1:
        raise UserError("%s: the episode has no telemetry to replay%s"
                           % (path, "" if ep.complete else " (file cut short: %s)" % ep.error))
    key = source + "_cdeg"
    return tele["t_ns"].astype(np.int64), tele[key].astype(np.int64)


def ramp(link, start, goal, seconds: float) -> None:
    """Linear steps from start to goal over `seconds` (the board's slew limit still applies)."""
    steps = max(1, int(seconds * SEND_HZ))
    t0 = time.monotonic()
    for k in range(1, steps + 1):
        link.send_targets(np.round(start + (goal - start) * k / steps).astype(int))
        _sleep_until(t0 + k / SEND_HZ)


def play(link, t_ns, targets, speed: float) -> dict:
    """Send each target at its recorded time (scaled by speed); how late the sends were."""
    lateness = []
    t0 = time.monotonic_ns()
    first = int(t_ns[0])
    for t, row in zip(t_ns, targets):
        due = t0 + (int(t) - first) / speed
        _sleep_until(due / 1e9)
        lateness.append(time.monotonic_ns() - due)
        link.send_targets(row)
    late = np.array(lateness) / 1e6
    return {"sent": len(lateness), "late_median_ms": float(np.median(late)),
            "late_worst_ms": float(late.max()), "seconds": (time.monotonic_ns() - t0) / 1e9}


def _sleep_until(t_monotonic: float) -> None:
    left = t_monotonic - time.monotonic()
    if left > 0:
        time.sleep(left)


def current_pose(link, timeout: float = 2.0) -> np.ndarray:
    """Where the hand is: the goals of the next telemetry (what the servos were last told)."""
    sub = link.subscribe("TELEMETRY")
    try:
        m = sub.get(timeout=timeout)
    finally:
        link.unsubscribe(sub)
    if m is None:
        raise UserError("no telemetry from the board within %.0f s: is its loop running?" % timeout)
    return np.array(m.column("goal_cdeg"), dtype=np.int64)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="play an episode's joint targets to the hand (HOST mode)",
        description="Play the joint targets recorded in an episode (its /telemetry servo "
                    "goals) to the hand in HOST mode, at the recorded timing, after a slow "
                    "ramp from where the hand is to the first pose. Ctrl-C stops and relaxes "
                    "the hand.",
        epilog="examples:\n  dexlink replay session/episode_0003.mcap --sim\n"
               "  dexlink replay episode_0003.mcap --port /dev/ttyACM0 --ramp 5 --speed 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episode", type=Path, metavar="EPISODE", help="an episode file (.mcap)")
    add_board_args(p)
    p.add_argument("--ramp", type=float, default=2.0, metavar="S",
                   help="seconds to reach the first pose (default 2; longer for big moves)")
    p.add_argument("--ramp-speed", type=float, default=30.0, metavar="DEG/S",
                   help="the ramp is slowed so no joint moves faster than this (default 30)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--source", choices=("goal", "exo"), default="goal",
                   help="replay the recorded servo goals (default) or exoskeleton angles")
    p.add_argument("--end", choices=("idle", "hold"), default="idle",
                   help="after the last target: relax the hand (idle, default) or leave it in "
                        "HOST mode holding the last pose until the watchdog acts (hold)")
    p.set_defaults(func=replay)


def replay(args) -> int:
    if args.speed <= 0:
        raise UserError("--speed must be positive, got %g" % args.speed)
    t_ns, targets = load_targets(args.episode, args.source)
    with open_link(board_options(args)) as link:
        n = link.board.n_joints
        if targets.shape[1] != n:
            raise UserError("%s has %d joints per sample but the board runs %d: replay it on "
                               "the hand it was recorded with" % (args.episode, targets.shape[1], n))
        start = current_pose(link)
        nacks = link.subscribe("NACK")  # TARGETS are not waited for: refusals come here
        link.set_mode(catalog.MODE_HOST)
        try:
            biggest_deg = float(np.abs(targets[0] - start).max()) / 100
            seconds = max(args.ramp, biggest_deg / args.ramp_speed)
            print("ramping to the first pose over %.1f s (largest move %.1f deg)" % (seconds, biggest_deg))
            ramp(link, start, targets[0], seconds)
            span = (t_ns[-1] - t_ns[0]) / 1e9 / args.speed
            print("playing %d targets over %.1f s" % (len(t_ns), span), flush=True)
            result = play(link, t_ns, targets, args.speed)
            print("sent %d targets in %.1f s; late by %.2f ms median, %.2f ms worst" % (
                result["sent"], result["seconds"], result["late_median_ms"], result["late_worst_ms"]))
        finally:
            if args.end == "idle":
                link.set_mode(catalog.MODE_IDLE)
        refused = [m for m in nacks.drain() if m.acked_type == catalog.TARGETS]
        if refused:
            reason = catalog.ERR_NAMES[refused[0].error] if refused[0].error < len(catalog.ERR_NAMES) else "?"
            raise UserError("the board refused %d of the targets (%s): the replay did not "
                               "reach the hand as recorded" % (len(refused), reason))
    return 0
