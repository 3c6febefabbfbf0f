"""What the operator sees, gathered from a link's messages and events (no drawing here)."""
from __future__ import annotations

import time
from collections import deque

from dexlink.link import EVENT, Link
from dexlink.link import fault_text as link_fault_text
from dexproto import catalog
from dexproto.stream import mode_name

STATUS_FLAGS = (
    (catalog.ST_MAGNET_MISSING, "no-magnet"),
    (catalog.ST_MAGNET_WEAK, "weak-magnet"),
    (catalog.ST_ENCODER_ERROR, "enc-err"),
    (catalog.ST_HELD, "held"),
    (catalog.ST_SERVO_TIMEOUT, "servo-timeout"),
    (catalog.ST_SERVO_BAD_CHECKSUM, "servo-crc"),
    (catalog.ST_SERVO_ERROR, "servo-err"),
    (catalog.ST_LIMITED, "limited"),
)


def status_text(bits: int) -> str:
    """Per-joint status bits as words ('ok' when none is set)."""
    words = [name for bit, name in STATUS_FLAGS if bits & bit]
    return " ".join(words) if words else "ok"


def fault_text(m) -> str:
    """The link's words for it (the joint by name, when the link knows the hand's names)."""
    return getattr(m, "description", None) or link_fault_text(m)


class SessionState:
    """The latest telemetry, loop rate, faults, log lines and link events of a session."""

    def __init__(self, link: Link, joint_names: list[str] | None = None, history: int = 8):
        self.link = link
        self.joint_names = joint_names or []
        self.sub = link.subscribe("TELEMETRY", "FAULT", "LOG", EVENT)
        self.telemetry = None
        self.lines: deque[str] = deque(maxlen=history)
        self.faults = 0
        self.loop_hz = 0.0
        self._rate_ref = None  # (cycle, board_us) about a second ago
        self.same_cycle = [0, 0]  # TELEOP joints whose goal is this cycle's exo angle, of all

    def update(self) -> None:
        """Take in everything that arrived since the last call."""
        for m in self.sub.drain():
            if m.name == "TELEMETRY":
                self._telemetry(m)
            elif m.name == "FAULT":
                self.faults += 1
                self._line(fault_text(m))
            elif m.name == "LOG":
                if m.level >= catalog.LOG_INFO:  # debug lines would flood the screen
                    self._line("board: " + m.text.strip())
            else:  # a link event
                self._line("link %s: %s" % (m.kind, m.detail))

    def _line(self, text: str) -> None:
        self.lines.append(time.strftime("%H:%M:%S ") + text)

    def _telemetry(self, m) -> None:
        ref = self._rate_ref
        if ref is None or m.cycle < ref[0]:
            self._rate_ref = (m.cycle, m.board_us)
        else:
            dus = (m.board_us - ref[1]) & 0xFFFFFFFF
            if dus >= 1_000_000:
                self.loop_hz = (m.cycle - ref[0]) * 1e6 / dus
                self._rate_ref = (m.cycle, m.board_us)
        self.telemetry = m
        if m.mode == catalog.MODE_TELEOP:
            self._count_same_cycle(m)

    def _count_same_cycle(self, m) -> None:
        """TELEOP latency from telemetry: exo sampled and servo goal written in one cycle
        shows as goal == exo in the same sample (limited or held joints excepted)."""
        skip = catalog.ST_LIMITED | catalog.ST_HELD
        for exo, goal, _, status in m.items:
            if not status & skip:
                self.same_cycle[1] += 1
                self.same_cycle[0] += exo == goal

    def teleop_latency(self) -> str:
        same, total = self.same_cycle
        t = self.telemetry
        if not total or t is None:
            return ""
        return "exo->servo within one cycle (%d us) in %.1f%% of samples" % (
            t.cycle_us, 100.0 * same / total)

    @property
    def mode(self) -> int | None:
        t = self.telemetry
        return t.mode if t is not None else self.link.mode

    def joints(self) -> list[tuple]:
        """(name, exo deg, goal deg, present deg, status words) per joint."""
        t = self.telemetry
        if t is None:
            return []
        rows = []
        for i, (exo, goal, present, status) in enumerate(t.items):
            name = self.joint_names[i] if i < len(self.joint_names) else "joint %d" % i
            rows.append((name, exo / 100, goal / 100, present / 100, status_text(status)))
        return rows

    def loop(self) -> dict:
        t = self.telemetry
        if t is None:
            return {}
        return {"rate_hz": self.loop_hz, "cycle_us": t.cycle_us, "worst_cycle_us": t.worst_cycle_us,
                "overruns": t.overruns, "cycle": t.cycle}

    def summary_line(self) -> str:
        """One plain line: mode, loop, link; for logs and pipes."""
        s = self.link.stats_snapshot()
        loop = self.loop()
        parts = ["mode %s" % mode_name(self.mode)]
        if loop:
            parts.append("loop %.0f Hz cycle %d us worst %d us overruns %d" % (
                loop["rate_hz"], loop["cycle_us"], loop["worst_cycle_us"], loop["overruns"]))
        else:
            parts.append("no telemetry yet")
        parts.append("link %.0f frames/s %.1f kB/s drops %d gaps %d rtt %s" % (
            s["frames_per_s"], s["bytes_per_s"] / 1e3, s["dropped"], s["seq_gaps"],
            "%.2f ms" % s["rtt_ms"] if s["rtt_ms"] is not None else "-"))
        if s["drift_ppm"] is not None:
            parts.append("clock %+.1f ppm" % s["drift_ppm"])
        if self.mode == catalog.MODE_TELEOP and self.teleop_latency():
            parts.append(self.teleop_latency())
        if not s["connected"]:
            parts.append("DISCONNECTED")
        return " | ".join(parts)

    def joints_line(self) -> str:
        return "  ".join("%s %.1f>%.1f/%.1f%s" % (n, e, g, p, "" if st == "ok" else " [%s]" % st)
                         for n, e, g, p, st in self.joints())
