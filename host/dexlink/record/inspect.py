"""What an episode holds: streams, real rates, gaps and drops; plots and a contact sheet."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dexlink.record import schema
from dexlink.record.reader import EpisodeData, read_episode
from dexproto.catalog import PRESENT_UNKNOWN


@dataclass
class StreamReport:
    topic: str
    count: int
    rate_hz: float  # measured: (count - 1) / time span
    gaps: int  # intervals longer than 1.5 x the median interval
    max_gap_ms: float
    drops: int  # lost before the file: camera misses + full queue, or telemetry cycles


@dataclass
class EpisodeReport:
    path: Path
    task: str
    mark: str
    duration_s: float
    complete: bool
    error: str
    streams: list


def _telemetry_lost(ep: EpisodeData) -> int:
    """Telemetry cycles that never arrived, from the cycle counter and its usual step."""
    s = ep.streams.get(schema.TELEMETRY)
    if s is None or len(s) < 3:
        return 0
    cycles = np.array([json.loads(d)["cycle"] for d in s.data], dtype=np.int64)
    steps = np.diff(cycles)
    steps = steps[steps > 0]
    if not len(steps):
        return 0
    step = int(np.median(steps))
    return int(np.sum(steps // step - 1))


def _drops(ep: EpisodeData, topic: str) -> int:
    result = ep.result
    queued = dict(kv.split("=") for kv in result.get("dropped", "").split(",") if "=" in kv)
    n = int(queued.get(topic, 0))
    if topic == schema.TELEMETRY:
        return n + _telemetry_lost(ep)
    cam = schema.camera_of(topic)
    if topic.endswith("/image") or topic == "/rgbd/color":
        n += int(result.get("missed." + cam, 0))
    return n


def stream_report(ep: EpisodeData, topic: str) -> StreamReport:
    t = ep.streams[topic].times
    n = len(t)
    if n < 2:
        return StreamReport(topic, n, 0.0, 0, 0.0, _drops(ep, topic))
    dt = np.diff(t)
    span = t[-1] - t[0]
    med = float(np.median(dt))
    gaps = int(np.sum(dt > 1.5 * med)) if med > 0 else 0
    return StreamReport(topic, n, (n - 1) * 1e9 / span if span else 0.0, gaps,
                        float(dt.max()) / 1e6, _drops(ep, topic))


def report(path: Path, ep: EpisodeData | None = None) -> EpisodeReport:
    ep = ep or read_episode(path, keep=lambda t: t == schema.TELEMETRY or t == schema.EVENTS)
    t0, t1 = ep.span_ns()
    streams = [stream_report(ep, topic) for topic in sorted(ep.streams)
               if topic != schema.EVENTS]
    mark = ep.result.get("mark", "") if ep.result else "(unknown: file cut short)"
    return EpisodeReport(Path(path), ep.info.get("task", ""), mark, (t1 - t0) / 1e9,
                         ep.complete, ep.error, streams)


def print_report(rep: EpisodeReport, console) -> None:
    from rich.table import Table

    state = "complete" if rep.complete else "CUT SHORT (%s): run `dexlink recover %s`" % (
        rep.error, rep.path)
    table = Table(title="%s  task %r  mark %s  %.2f s  %s" % (
        rep.path.name, rep.task, rep.mark or "-", rep.duration_s, state), title_justify="left")
    for col in ("stream", "messages", "rate (Hz)", "gaps", "max gap (ms)", "dropped"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    for s in rep.streams:
        table.add_row(s.topic, str(s.count), "%.1f" % s.rate_hz, str(s.gaps),
                      "%.1f" % s.max_gap_ms, str(s.drops))
    console.print(table)


# --- plots --------------------------------------------------------------------------------
def plot_episode(ep: EpisodeData, out: Path) -> Path:
    """Joint traces, goals vs present positions per joint, contact measures over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tel = ep.telemetry()
    tactile = sorted({schema.camera_of(t) for t in ep.streams if t.endswith("/contact")})
    t0 = ep.span_ns()[0]
    n_joints = tel["present_cdeg"].shape[1] if tel else 0
    names = [n for n in ep.info.get("joint_names", "").split(",") if n]
    cols = 4
    joint_rows = (n_joints + cols - 1) // cols
    rows = 2 + joint_rows
    fig = plt.figure(figsize=(14, 2.2 * rows + 1), constrained_layout=True)
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, :])
    if tel:
        ts = (tel["t_ns"] - t0) / 1e9
        ax.plot(ts, tel["exo_cdeg"] / 100.0, linewidth=0.8)
        for j in range(n_joints):
            a = fig.add_subplot(grid[1 + j // cols, j % cols])
            a.plot(ts, tel["goal_cdeg"][:, j] / 100.0, "--", linewidth=0.9, label="goal")
            present = tel["present_cdeg"][:, j]  # PRESENT_UNKNOWN: not read back, not an angle
            a.plot(ts, np.where(present == PRESENT_UNKNOWN, np.nan, present / 100.0),
                   linewidth=0.9, label="present")
            a.set_title(names[j] if j < len(names) else "joint %d" % j, fontsize=8)
            a.tick_params(labelsize=7)
            if j == 0:
                a.legend(fontsize=7)
    ax.set_title("exoskeleton joint angles (deg); below: goal vs present position per joint (deg)")
    ax.set_xlabel("s")
    ax = fig.add_subplot(grid[rows - 1, :])
    for cam in tactile:
        c = ep.contact(cam)
        ax.plot((c["t_ns"] - t0) / 1e9, c["area"], label="%s area" % cam)
    ax.set_title("tactile contact area (fraction of the gel)")
    ax.set_xlabel("s")
    if tactile:
        ax.legend(fontsize=7)
    fig.suptitle("%s  %s" % (ep.path.name, ep.info.get("task", "")))
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def contact_sheet(ep: EpisodeData, out: Path, columns: int = 8, thumb=(160, 120)) -> Path | None:
    """A grid of tactile frames: one row per camera, frames evenly spread over the episode."""
    topics = sorted(t for t in ep.streams if t.startswith("/tactile/") and t.endswith("/image"))
    return frame_sheet(ep, topics, out, columns, thumb)


def rgbd_sheet(ep: EpisodeData, out: Path, columns: int = 8, thumb=(160, 120)) -> Path | None:
    """A row of the RGB-D camera's colour frames (the scene: the hand and the object),
    evenly spread over the episode; None when the episode has no RGB-D camera."""
    topic = schema.image_topic("rgbd", "rgbd")
    return frame_sheet(ep, [topic] if topic in ep.streams else [], out, columns, thumb)


def frame_sheet(ep: EpisodeData, topics: list, out: Path, columns: int,
                thumb) -> Path | None:
    """A grid of image frames: one row per topic, `columns` frames evenly spread over the
    episode, each labelled with its camera and time. None when there are no topics."""
    if not topics:
        return None
    w, h = thumb
    sheet = np.full((len(topics) * (h + 20), columns * w, 3), 255, np.uint8)
    t0 = ep.span_ns()[0]
    for r, topic in enumerate(topics):
        s = ep.streams[topic]
        for c, i in enumerate(np.linspace(0, len(s) - 1, columns).astype(int) if len(s) else []):
            _, data = schema.image_bytes(s.data[i])
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                continue
            y, x = r * (h + 20) + 20, c * w
            sheet[y:y + h, x:x + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            cv2.putText(sheet, "%s %.2fs" % (schema.camera_of(topic), (s.times[i] - t0) / 1e9),
                        (x + 4, y - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(out), sheet)
    return out
