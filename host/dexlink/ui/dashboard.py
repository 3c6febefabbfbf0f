"""The live session dashboard: rich on a terminal, plain periodic lines otherwise."""
from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dexlink.link import LinkError
from dexlink.ui.state import SessionState, mode_name
from dexproto import catalog

KEYS = {
    "i": ("IDLE", catalog.MODE_IDLE),
    "t": ("TELEOP", catalog.MODE_TELEOP),
    "h": ("HOST", catalog.MODE_HOST),
    "c": ("CALIBRATE", catalog.MODE_CALIBRATE),
}
ESTOP_KEYS = (" ", "e")
QUIT_KEYS = ("q", "\x03")
HELP = "[i] idle  [t] teleop  [h] host  [c] calibrate  [space/e] E-STOP  [q] quit"


def render(state: SessionState):
    """The whole screen as one rich renderable."""
    link = state.link
    s = link.stats_snapshot()
    loop = state.loop()
    head = Table.grid(padding=(0, 2))
    head.add_row(Text(link.describe_board(), style="bold"),
                 Text("mode %s" % mode_name(state.mode), style="bold reverse"))
    if loop:
        head.add_row("loop %.0f Hz  cycle %d us  worst %d us  overruns %d" % (
            loop["rate_hz"], loop["cycle_us"], loop["worst_cycle_us"], loop["overruns"]),
            state.teleop_latency() if state.mode == catalog.MODE_TELEOP else "")
    head.add_row("link %s  %.0f frames/s  %.1f kB/s  drops %d  gaps %d  rtt %s  clock %s" % (
        "up" if s["connected"] else "DOWN", s["frames_per_s"], s["bytes_per_s"] / 1e3,
        s["dropped"], s["seq_gaps"],
        "%.2f ms" % s["rtt_ms"] if s["rtt_ms"] is not None else "-",
        "%+.1f ppm" % s["drift_ppm"] if s["drift_ppm"] is not None else "-"), "")
    joints = Table(expand=False, box=None, header_style="bold")
    for col in ("joint", "exo deg", "goal deg", "present deg", "status"):
        joints.add_column(col, justify="left" if col in ("joint", "status") else "right")
    for name, exo, goal, present, status in state.joints():
        joints.add_row(name, "%.2f" % exo, "%.2f" % goal, "%.2f" % present,
                       Text(status, style="green" if status == "ok" else "bold red"))
    lines = Text("\n".join(state.lines) or "no events")
    return Group(Panel(head, title="dexlink session"), joints,
                 Panel(lines, title="events"), Text(HELP, style="dim"))


class Keys:
    """Single key presses from a terminal, without waiting (cbreak while in use)."""

    def __init__(self, stream=sys.stdin):
        self.fd = stream.fileno()
        self._saved = None

    def __enter__(self):
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        return os.read(self.fd, 1).decode("utf-8", "replace")


def apply_key(state: SessionState, key: str) -> bool:
    """Act on a key; False when the operator quits."""
    link = state.link
    if key in QUIT_KEYS:
        return False
    if key in ESTOP_KEYS:
        link.estop()
        state.lines.append("E-STOP sent: torque off")
    elif key.lower() in KEYS:
        name, mode = KEYS[key.lower()]
        try:
            link.set_mode(mode)
            state.lines.append("mode %s requested" % name)
        except LinkError as e:
            state.lines.append("mode %s refused: %s" % (name, e))
    return True


def run_live(state: SessionState, duration: float | None, refresh_hz: float = 10) -> None:
    """The rich dashboard with keys, until q or the duration ends."""
    end = time.monotonic() + duration if duration else None
    with Keys() as keys, Live(render(state), auto_refresh=False, screen=False) as live:
        while end is None or time.monotonic() < end:
            key = keys.read(1 / refresh_hz)
            if key is not None and not apply_key(state, key):
                break
            state.update()
            live.update(render(state), refresh=True)


def run_plain(state: SessionState, duration: float | None, every_s: float = 1.0, out=None) -> None:
    """A summary line (and the joints) every every_s seconds: for pipes and logs."""
    out = out or sys.stdout
    print(state.link.describe_board(), file=out)  # which board (a virtual one: the target it runs as)
    end = time.monotonic() + duration if duration else None
    next_print = time.monotonic() + every_s
    while end is None or time.monotonic() < end:
        time.sleep(0.05)
        state.update()
        if time.monotonic() >= next_print:
            next_print += every_s
            _print_plain(state, out)
    _print_plain(state, out)


def _print_plain(state: SessionState, out) -> None:
    for line in state.lines:
        print(line, file=out)
    state.lines.clear()
    print(state.summary_line(), file=out)
    joints = state.joints_line()
    if joints:
        print("  " + joints, file=out)
    out.flush()
