"""Playing an episode's joint targets back to the hand (`dexlink replay`).

The targets are the episode's recorded servo goals (joint frame, cdeg), or its exoskeleton
angles, from its /telemetry channel, sent at the recorded timing (capture times on the
host clock), after a slow ramp from where the hand is to the first pose.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dexlink.errors import UserError
from dexproto import catalog

SEND_HZ = 100  # ramp steps per second


class ReplayError(UserError):
    """An episode that cannot be replayed, or a replay the board refused."""


def load_targets(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(t_ns, targets cdeg n x joints) from an episode file's telemetry."""
    from dexlink.record.reader import read_episode

    if not path.is_file():
        raise ReplayError("%s: no such episode file" % path)
    try:
        ep = read_episode(path, keep=lambda topic: topic == "/telemetry")
    except Exception as e:  # the MCAP library raises many kinds; the user needs the file name
        raise ReplayError("%s: not a readable episode (%s)" % (path, e)) from None
    tele = ep.telemetry()
    if not tele or len(tele["t_ns"]) < 1:
        raise ReplayError("%s: the episode has no telemetry to replay%s"
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
        raise ReplayError("no telemetry from the board within %.0f s: is its loop running?" % timeout)
    return np.array(m.column("goal_cdeg"), dtype=np.int64)


def ramp_seconds(start, goal, at_least_s: float, max_deg_per_s: float) -> tuple[float, float]:
    """(seconds, largest move in degrees) of a ramp from start to goal: at_least_s, longer
    when a joint would move faster than max_deg_per_s."""
    biggest_deg = float(np.abs(np.asarray(goal) - start).max()) / 100
    return max(at_least_s, biggest_deg / max_deg_per_s), biggest_deg


def check_not_refused(nacks) -> None:
    """Raise when the board refused TARGETS (sent without waiting: refusals are NACKs on
    the `nacks` subscription)."""
    refused = [m for m in nacks.drain() if m.acked_type == catalog.TARGETS]
    if refused:
        error = refused[0].error
        reason = catalog.ERR_NAMES[error] if error < len(catalog.ERR_NAMES) else "?"
        raise ReplayError("the board refused %d of the targets (%s): the replay did not "
                          "reach the hand as recorded" % (len(refused), reason))
