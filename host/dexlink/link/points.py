"""Timed joint goals for the board (TARGET_POINTS, protocol 1.2): an action chunk on the
board's clock, which the firmware plays at its loop rate with smooth interpolation.

A chunk is k points of n joint goals in degrees, the first for board time t0 and then one
every step. On the way out: every value must be finite (a NaN or infinite action is refused,
naming the point and joint), goals become centidegrees clipped to the joint ranges this
session set (to int16 otherwise; the board clips to its own ranges either way), points
already past on the board's clock are dropped and counted, and what is left is cut into
frames that fit MAX_PAYLOAD: the first replaces the board's queued points from its time on
(or appends, replace=False), the others append.
"""
from __future__ import annotations

import threading

import numpy as np

from dexproto import catalog
from dexproto.stream import SPECS_BY_NAME, Message, make

from .errors import LinkError

POINTS_MINOR = 2  # the protocol minor version that brought TARGET_POINTS
HEAD_SIZE = SPECS_BY_NAME["TARGET_POINTS"].head.size  # t0_us, step_us, flags
INT16 = 32767


def points_per_frame(n_joints: int) -> int:
    """How many points of n_joints goals one TARGET_POINTS frame holds."""
    return (catalog.MAX_PAYLOAD - catalog.HEADER_SIZE - HEAD_SIZE) // (2 * n_joints)


def check_step(step_us, n_points: int) -> int:
    """step_us as an int of 1..POINTS_MAX_STEP_US µs, or ValueError. A lone point has no
    step: 0 is taken as 1 then."""
    most = catalog.POINTS_MAX_STEP_US
    if isinstance(step_us, bool) or not isinstance(step_us, (int, np.integer)) \
            or not (1 <= step_us <= most or (step_us == 0 and n_points == 1)):
        raise ValueError("step_us: %r, expected an integer of 1..%d (µs between points)"
                         % (step_us, most))
    return max(1, int(step_us))


def check_goals(goals_deg, n_joints: int, joint_names=()) -> np.ndarray:
    """goals_deg as a (k, n_joints) float array; ValueError naming what is wrong (shape,
    or the first point and joint that is NaN or infinite)."""
    try:
        goals = np.asarray(goals_deg, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError("goals_deg: not an array of numbers (%s)" % e) from None
    if goals.ndim != 2 or goals.shape[1] != n_joints or goals.shape[0] == 0:
        raise ValueError("goals_deg: shape %s, expected (points, %d): one goal per joint of "
                         "the board, at least one point" % (goals.shape, n_joints))
    if goals.shape[0] >= catalog.POINTS_CAPACITY:
        raise ValueError("goals_deg: %d points; the board queues at most %d of a chunk"
                         % (goals.shape[0], catalog.POINTS_CAPACITY - 1))
    bad = np.argwhere(~np.isfinite(goals))
    if len(bad):
        k, j = (int(v) for v in bad[0])
        name = " (%s)" % joint_names[j] if j < len(joint_names) else ""
        raise ValueError("goals_deg[%d, %d]: point %d, joint %d%s is %s: an action must be a "
                         "finite angle; the chunk was not sent (%d bad values in it)"
                         % (k, j, k, j, name, goals[k, j], len(bad)))
    return goals


def to_cdeg(goals: np.ndarray, ranges: dict[int, tuple[int, int]]) -> np.ndarray:
    """Degrees -> int cdeg, clipped to each joint's (min_cdeg, max_cdeg) where known."""
    lo = np.full(goals.shape[1], -INT16)
    hi = np.full(goals.shape[1], INT16)
    for j, (a, b) in ranges.items():
        if j < len(lo):
            lo[j], hi[j] = a, b
    return np.clip(np.rint(goals * 100.0), lo, hi).astype(np.int64)


class PointSender:
    """Chunks to TARGET_POINTS frames, and what was sent and dropped (thread-safe counts)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.chunks = 0
        self.frames = 0
        self.points_sent = 0
        self.points_dropped = 0  # already past on the board's clock when sent

    def messages(self, board_t0_us: int, step_us: int, cdeg: np.ndarray, board_now_us: float,
                 period: int, replace: bool) -> list[Message]:
        """The frames of one chunk (cdeg: (k, n) ints; board times unwrapped, µs); the points
        at or before board_now_us are left out and counted."""
        k, n = cdeg.shape
        late = board_now_us - board_t0_us
        skip = 0 if late < 0 else min(k, int(late // step_us) + 1)
        if -late > catalog.POINTS_MAX_AHEAD_US:
            raise ValueError(
                "board_t0_us: %.0f ms ahead of the board's clock; a chunk starts at most %d ms "
                "ahead (a time from another clock? map host times with board_time_us)"
                % (-late / 1000, catalog.POINTS_MAX_AHEAD_US // 1000))
        per = points_per_frame(n)
        out = []
        for start in range(skip, k, per):
            rows = cdeg[start:start + per]
            flags = catalog.POINTS_REPLACE if replace and not out else 0
            t0 = (board_t0_us + start * step_us) % period
            out.append(make("TARGET_POINTS", t0_us=t0, step_us=step_us, flags=flags,
                            items=[(int(v),) for v in rows.ravel()]))
        with self._lock:
            self.chunks += 1
            self.frames += len(out)
            self.points_sent += k - skip
            self.points_dropped += skip
        return out

    def counts(self) -> dict:
        with self._lock:
            return {"point_chunks": self.chunks, "point_frames": self.frames,
                    "points_sent": self.points_sent, "points_dropped": self.points_dropped}


def check_board(board: Message | None, url: str) -> None:
    """LinkError unless the board speaks a protocol minor that has TARGET_POINTS."""
    if board is None:
        raise LinkError("%s: not connected: open the link before sending points" % url)
    if board.proto_minor < POINTS_MINOR:
        raise LinkError(
            "%s: the board speaks protocol %d.%d; timed points (TARGET_POINTS) need %d.%d or "
            "later: flash newer firmware with `dexlink flash`"
            % (url, board.proto_major, board.proto_minor, catalog.PROTOCOL_MAJOR, POINTS_MINOR))
