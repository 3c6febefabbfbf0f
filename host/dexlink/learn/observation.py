"""Observations by capture time: the one place where streams become what a policy sees.

A stream is a `Sampled`: capture times (host monotonic ns, the clock every stream of an
episode shares) and one value per time. `assemble(streams, targets)` picks, for every
target time, the latest sample at or before it (as diffusion-policy code does, never by
arrival order or a nominal rate) and returns one row per target under the dataset's
feature names:

    observation.state     the hand's present positions, degrees (n, joints) float32
    action                the goals (the exoskeleton's command), degrees
    observation.contact   area and intensity per tactile camera, cameras in the given order
    observation.images.K  the images as the streams hold them (encoded or decoded)

Export calls it with a whole episode's streams and its frame grid (`frame_times`);
deployment keeps the last moments of the live streams in a `History` and calls it with
the observation horizon ending now (`history_times`). Both therefore see the same rows.
Only numpy here: export and the live path must not need torch.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from dexproto import catalog

STATE = "observation.state"
ACTION = "action"
CONTACT = "observation.contact"
IMAGES = "observation.images."
CONTACT_STREAM = "contact/"  # + camera: one camera's (area, intensity) before joining


@dataclass
class Sampled:
    """One stream: sorted capture times (int64 ns) and a value per time (array rows or a
    list of images)."""

    times: np.ndarray
    values: np.ndarray | Sequence

    def __len__(self):
        return len(self.times)


def latest_at_or_before(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the latest sample at or before each target (-1 when there is none)."""
    return np.searchsorted(times, targets, side="right") - 1


def frame_times(streams: Mapping[str, Sampled], fps: float) -> np.ndarray:
    """The frame grid of an episode at fps: from the moment every stream has started to
    the moment the first one ends, so every frame has a sample of every stream."""
    start = max(int(s.times[0]) for s in streams.values())
    end = min(int(s.times[-1]) for s in streams.values())
    step = 1e9 / fps
    n = int((end - start) // step) + 1 if end >= start else 0
    return start + np.round(np.arange(n) * step).astype(np.int64)


def history_times(t_ns: int, fps: float, horizon: int) -> np.ndarray:
    """The `horizon` observation times ending at t_ns, one frame period apart, oldest first."""
    step = 1e9 / fps
    return int(t_ns) - np.round(np.arange(horizon - 1, -1, -1) * step).astype(np.int64)


def read_back(present_cdeg: np.ndarray, blind: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(rows to keep, blind joints) of telemetry's present positions (n, joints) in cdeg.

    A present position not read back yet (catalog.PRESENT_UNKNOWN: the first cycles after
    a boot) is a placeholder, not an angle: a row with one is left out. A joint unknown in
    every row (or `blind`, when the caller knows better) has a servo without read-back:
    its state is its goal, all that is known, and it does not cost its rows.
    """
    unknown = np.asarray(present_cdeg) == catalog.PRESENT_UNKNOWN
    if blind is None:
        blind = unknown.all(axis=0)
    return ~(unknown & ~blind).any(axis=1), blind


def telemetry_streams(t_ns: np.ndarray, present_cdeg: np.ndarray, goal_cdeg: np.ndarray,
                      blind: np.ndarray | None = None) -> dict[str, Sampled]:
    """observation.state and action (degrees) from telemetry in centidegrees, the rows
    and joints not read back treated as `read_back` says."""
    present = np.asarray(present_cdeg)
    goal = np.asarray(goal_cdeg)
    keep, blind = read_back(present, blind)
    present = np.where(blind, goal, present)[keep]
    t = np.asarray(t_ns, np.int64)[keep]
    return {STATE: Sampled(t, present.astype(np.float32) / 100),
            ACTION: Sampled(t, goal[keep].astype(np.float32) / 100)}


def contact_stream(t_ns: np.ndarray, area: np.ndarray, intensity: np.ndarray) -> Sampled:
    """One tactile camera's contact measures as (area, intensity) rows."""
    return Sampled(np.asarray(t_ns, np.int64),
                   np.stack([np.asarray(area), np.asarray(intensity)], axis=1).astype(np.float32))


def image_feature(topic: str) -> str:
    """observation.images.<key> of an episode's image topic: rgb, or tactile_<finger>."""
    parts = topic.strip("/").split("/")
    return IMAGES + ("rgb" if topic == "/rgbd/color" else "tactile_" + parts[1])


def assemble(streams: Mapping[str, Sampled], targets: np.ndarray,
             contact_cameras: Sequence[str] = (), pad_start: bool = False) -> dict:
    """One observation row per target time, from the latest sample at or before it.

    Streams named `contact/<camera>` are joined, in `contact_cameras` order, into
    observation.contact (n, 2 * cameras); every other stream keeps its name. A target
    before a stream's first sample is an error, unless `pad_start`: then it takes the
    first sample, as training pads the start of an episode (the live path starts so).
    """
    targets = np.asarray(targets, np.int64)
    out: dict = {}
    picked: dict = {}
    for key, s in streams.items():
        idx = latest_at_or_before(s.times, targets)
        if len(idx) and idx.min() < 0:
            if not pad_start or not len(s):
                raise ValueError("stream %s has no sample at or before %d ns" % (key, targets[0]))
            idx = np.maximum(idx, 0)
        if isinstance(s.values, np.ndarray):
            picked[key] = s.values[idx]
        else:
            picked[key] = [s.values[j] for j in idx]
    for key, rows in picked.items():
        if not key.startswith(CONTACT_STREAM):
            out[key] = rows
    extra = sorted(k[len(CONTACT_STREAM):] for k in picked if k.startswith(CONTACT_STREAM)
                   and k[len(CONTACT_STREAM):] not in contact_cameras)
    cams = list(contact_cameras) + extra
    missing = [c for c in cams if CONTACT_STREAM + c not in picked]
    if missing:
        raise ValueError("no contact stream of tactile camera(s) %s" % ", ".join(missing))
    out[CONTACT] = (np.concatenate([picked[CONTACT_STREAM + c] for c in cams], axis=1)
                    if cams else np.zeros((len(targets), 0), np.float32))
    return out


class History:
    """The last moments of live streams, for assembling the observation of now.

    Samples are added as they are captured (times never go back within a stream). Each
    stream keeps what the observation horizon can reach, plus `keep_s` seconds for
    observations asked for a little in the past, plus the one sample before that (the
    latest at or before the earliest target). `observation(t_ns)` is `assemble` over them
    at the policy's observation horizon ending at t_ns, the start padded as in training.
    """

    def __init__(self, fps: float, horizon: int, contact_cameras: Sequence[str] = (),
                 keep_s: float = 1.0):
        self.fps, self.horizon = fps, horizon
        self.contact_cameras = list(contact_cameras)
        self.span_ns = int(((horizon - 1) / fps + keep_s) * 1e9)
        self._times: dict[str, deque] = {}
        self._values: dict[str, deque] = {}
        self._read_back = None  # joints whose present position has been read back

    def add(self, key: str, t_ns: int, value) -> None:
        if key not in self._times:
            self._times[key] = deque()
            self._values[key] = deque()
        times, values = self._times[key], self._values[key]
        times.append(int(t_ns))
        values.append(value)
        while len(times) > 1 and times[1] <= t_ns - self.span_ns:
            times.popleft()
            values.popleft()

    def add_telemetry(self, t_ns: int, present_cdeg, goal_cdeg) -> None:
        """One telemetry sample; one whose positions are not read back yet is left out.

        Live, a joint is blind (state = goal, as export does for a joint unknown in a
        whole episode) once others have been read back and it never has: until some joint
        has been read back at all, a sample with an unknown one is left out, as export
        leaves out the first cycles after a boot.
        """
        present = np.asarray([present_cdeg])
        known = present[0] != catalog.PRESENT_UNKNOWN
        if self._read_back is None:
            self._read_back = np.zeros(len(known), bool)
        blind = ~self._read_back if self._read_back.any() else np.zeros(len(known), bool)
        self._read_back |= known
        for key, s in telemetry_streams(np.array([t_ns]), present, np.asarray([goal_cdeg]),
                                        blind & ~known).items():
            if len(s):
                self.add(key, t_ns, s.values[0])

    def add_contact(self, camera: str, t_ns: int, area: float, intensity: float) -> None:
        self.add(CONTACT_STREAM + camera, t_ns, np.array([area, intensity], np.float32))

    def ready(self, keys: Sequence[str]) -> bool:
        """Whether every one of these streams has a sample yet."""
        return all(self._times.get(k) for k in keys)

    def streams(self) -> dict[str, Sampled]:
        out = {}
        for key, times in self._times.items():
            values = list(self._values[key])
            if values and isinstance(values[0], np.ndarray) and values[0].ndim == 1:
                values = np.stack(values)
            out[key] = Sampled(np.fromiter(times, np.int64, len(times)), values)
        return out

    def observation(self, t_ns: int) -> dict:
        return assemble(self.streams(), history_times(t_ns, self.fps, self.horizon),
                        self.contact_cameras, pad_start=True)


def episode_streams(ep) -> tuple[dict[str, Sampled], list[str]]:
    """A read episode (dexlink.record.reader.EpisodeData) as streams under observation
    names, and its tactile cameras in export's order (sorted by image topic).

    Images stay the recorded messages (decode them with schema.image_bytes); depth, when
    there is an RGB-D camera, is observation.depth.
    """
    tel = ep.telemetry()
    streams = telemetry_streams(tel["t_ns"], tel["present_cdeg"], tel["goal_cdeg"])
    topics = sorted(t for t in ep.streams if t.endswith("/image") or t == "/rgbd/color")
    tactile = [t.strip("/").split("/")[1] for t in topics if t.startswith("/tactile/")]
    for topic in topics:
        s = ep.streams[topic]
        streams[image_feature(topic)] = Sampled(s.times, s.data)
    for camera in tactile:
        c = ep.contact(camera)
        if c:
            streams[CONTACT_STREAM + camera] = contact_stream(c["t_ns"], c["area"],
                                                              c["intensity"])
    if "/rgbd/depth" in ep.streams and "/rgbd/color" in ep.streams:
        s = ep.streams["/rgbd/depth"]
        streams["observation.depth"] = Sampled(s.times, s.data)
    return streams, tactile
