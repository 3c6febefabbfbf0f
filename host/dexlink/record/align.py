"""An episode resampled at a training frame rate, by capture time: what every export writes.

Every stream is resampled at the target rate by capture time: for each target time the
latest sample at or before it (as diffusion-policy code does), never by arrival order
or a nominal rate. Targets run from the moment every stream has started to the moment
the first one ends, so each frame has a sample of every stream. The picking is
dexlink.learn.observation's (`frame_times` and `assemble`): the function a deployed policy
assembles its live observations with, so training and deployment see the same rows.

observation.state = the hand's present positions, action = the goals (the exoskeleton's
command), both in degrees; contact = area and intensity per tactile camera; images by
key (tactile_<finger>, rgb), still encoded. A broken episode raises SkipEpisode.

Telemetry holds a sample per loop cycle (1000 a second): only the rows the targets pick
are decoded from JSON; the rest are looked at as bytes, for the present-unknown marker.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dexlink.learn import observation as obs
from dexlink.learn.observation import latest_at_or_before  # noqa: F401 (API)
from dexlink.record import schema
from dexlink.record.reader import episode_files, read_episode
from dexproto import catalog

RGB = "/rgbd/color"
DEPTH = "/rgbd/depth"
DEPTH_KEY = "observation.depth"
TELEMETRY_ROW = "telemetry_row"  # the stream of telemetry row numbers given to `assemble`
# How PRESENT_UNKNOWN looks in a telemetry row's JSON. Nothing else in a row can contain
# it: counters are unsigned and angles are int16, whose only value starting so is itself.
UNKNOWN_TEXT = str(catalog.PRESENT_UNKNOWN).encode()
REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
           8: cv2.IMREAD_REDUCED_COLOR_8}


class SkipEpisode(Exception):
    """This episode cannot be exported; the message says why."""


class Skipped(list):
    """(file, reason) of every episode left out."""


@dataclass
class AlignedEpisode:
    path: Path
    task: str
    t_s: np.ndarray  # target times from the episode's first target, seconds
    state: np.ndarray  # (n, joints) float32 degrees
    action: np.ndarray
    contact: np.ndarray  # (n, 2 * tactile cameras) float32
    images: dict = field(default_factory=dict)  # key -> list of n encoded images (bytes)
    depth: list | None = None  # n 16-bit PNGs, when there is an RGB-D camera (and wanted)
    tactile: list = field(default_factory=list)  # the cameras of contact's columns, in order
    info: dict = field(default_factory=dict)  # the episode file's dexlink metadata

    @property
    def joint_names(self) -> list[str]:
        names = [x for x in self.info.get("joint_names", "").split(",") if x]
        n = self.state.shape[1]
        return names if len(names) == n else ["joint_%d" % j for j in range(n)]

    def __len__(self):
        return len(self.t_s)

    def decode(self, key: str, i: int, reduce: int = 1) -> np.ndarray:
        """Image i of a camera as RGB uint8; reduce 2, 4 or 8: decoded at that fraction of
        its size (JPEG decodes so far faster than whole)."""
        _, data = schema.image_bytes(self.images[key][i])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[reduce])
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def decode_depth(self, i: int) -> np.ndarray:
        _, data = schema.image_bytes(self.depth[i])
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def image_key(topic: str) -> str:
    return "rgb" if topic == RGB else "tactile_" + schema.camera_of(topic)


def is_image_topic(topic: str) -> bool:
    return topic.endswith("/image") or topic == RGB


class TelemetryRows:
    """An episode's telemetry rows (JSON bytes), decoded only where asked.

    Samples whose present position was not read back yet (PRESENT_UNKNOWN: the first
    cycles after a boot, with ST_SERVO_TIMEOUT) are left out: a placeholder, not an angle.
    A joint unknown in every sample has a servo without read-back: its state is its goal
    (all that is known of it).
    """

    def __init__(self, times: np.ndarray, rows: list[bytes]):
        suspect = [i for i, row in enumerate(rows) if UNKNOWN_TEXT in row]
        keep = np.ones(len(rows), bool)
        self.blind = None  # joints never read back
        if suspect:
            present = np.array([json.loads(rows[i])["present_cdeg"] for i in suspect])
            # A row without the marker reads every joint: then none is blind.
            blind = None if len(suspect) == len(rows) else np.zeros(present.shape[1], bool)
            keep[suspect], self.blind = obs.read_back(present, blind)
        self.index = np.flatnonzero(keep)  # rows kept, in time order
        self.times = times[self.index]
        self.rows = rows

    def __len__(self):
        return len(self.index)

    def stream(self) -> obs.Sampled:
        """The kept samples as a stream whose values are their row numbers (for `decode`)."""
        return obs.Sampled(self.times, self.index)

    def decode(self, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present, goal) in cdeg of these row numbers, decoded from JSON only now."""
        unique, where = np.unique(picked, return_inverse=True)
        decoded = json.loads(b"[" + b",".join(self.rows[i] for i in unique) + b"]")
        present = np.array([r["present_cdeg"] for r in decoded], np.int32)[where]
        goal = np.array([r["goal_cdeg"] for r in decoded], np.int32)[where]
        if self.blind is not None and self.blind.any():
            present[:, self.blind] = goal[:, self.blind]
        return present, goal


def align(path: Path, fps: float, expect_images: list[str] | None = None,
          cameras: list[str] | None = None, depth: bool = True) -> AlignedEpisode:
    """Resample one episode file at fps; raises SkipEpisode with the reason it cannot.

    cameras: the image keys to keep (None: every camera); expect_images: the keys the
    episodes before had (an episode with others is skipped); depth: keep the depth images.
    """
    def wanted(topic):
        if is_image_topic(topic):
            return cameras is None or image_key(topic) in cameras
        return depth or topic != DEPTH

    try:
        ep = read_episode(path, keep=wanted)
    except (OSError, ValueError) as e:
        raise SkipEpisode("cannot read it: %s" % e) from None
    if not ep.complete:
        raise SkipEpisode("the file is cut short (%s); run `dexlink recover %s` first"
                          % (ep.error, path))
    s = ep.streams.get(schema.TELEMETRY)
    if s is None or len(s) < 2:
        raise SkipEpisode("it has no telemetry")
    tel = TelemetryRows(s.times, s.data)
    if len(tel) < 2:
        raise SkipEpisode("no servo position was read back in its telemetry")
    all_images = sorted(t for t in ep.streams if is_image_topic(t))
    if cameras is not None:
        missing = [k for k in cameras if k not in {image_key(t) for t in all_images}]
        if missing:
            raise SkipEpisode("it has no camera %s (it has: %s)" % (
                ", ".join(missing), ", ".join(image_key(t) for t in all_images) or "none"))
    image_topics = [t for t in all_images if cameras is None or image_key(t) in cameras]
    keys = [image_key(t) for t in image_topics]
    if expect_images is not None and keys != expect_images:
        raise SkipEpisode("its cameras (%s) differ from the first episode's (%s)"
                          % (", ".join(keys) or "none", ", ".join(expect_images) or "none"))
    # Contact measures of every tactile camera, chosen for images or not.
    tactile = [schema.camera_of(t) for t in all_images if t.startswith("/tactile/")]
    needed = image_topics + [schema.contact_topic(c) for c in tactile]
    if depth and RGB in all_images:
        needed.append(DEPTH)
    for topic in needed:
        if topic not in ep.streams or not len(ep.streams[topic]):
            raise SkipEpisode("stream %s is empty" % topic)
    # Telemetry goes in as row numbers (the rows picked are decoded after), the rest as
    # the observation streams a live History holds.
    streams = {TELEMETRY_ROW: tel.stream()}
    for topic, key in zip(image_topics, keys):
        streams[obs.IMAGES + key] = obs.Sampled(ep.streams[topic].times, ep.streams[topic].data)
    for cam in tactile:
        c = ep.contact(cam)
        streams[obs.CONTACT_STREAM + cam] = obs.contact_stream(c["t_ns"], c["area"], c["intensity"])
    if depth and DEPTH in ep.streams and RGB in all_images:
        streams[DEPTH_KEY] = obs.Sampled(ep.streams[DEPTH].times, ep.streams[DEPTH].data)
    targets = obs.frame_times(streams, fps)
    n = len(targets)
    if n < 2:
        raise SkipEpisode("its streams overlap for less than two frames at %g fps" % fps)
    rows = obs.assemble(streams, targets, tactile)
    present, goal = tel.decode(rows[TELEMETRY_ROW])
    return AlignedEpisode(Path(path), ep.info.get("task", ""), np.arange(n) / fps,
                          present.astype(np.float32) / 100, goal.astype(np.float32) / 100,
                          rows[obs.CONTACT], tactile=tactile, info=ep.info,
                          images={key: rows[obs.IMAGES + key] for key in keys},
                          depth=rows.get(DEPTH_KEY))


def joint_names(path: Path, n: int) -> list[str]:
    names = read_episode(path, keep=lambda t: False).info.get("joint_names", "")
    names = [x for x in names.split(",") if x]
    return names if len(names) == n else ["joint_%d" % j for j in range(n)]


def aligned_episodes(session: Path, fps: float, progress=None, cameras: list[str] | None = None,
                     depth: bool = True):
    """(generator of the session's (or file's) AlignedEpisodes, Skipped): the episodes left
    out go to the list as the generator passes them."""
    skipped = Skipped()

    def gen():
        expect = None
        files = episode_files(session)
        task = progress.add_task("export", total=len(files)) if progress else None
        for path in files:
            try:
                ep = align(path, fps, expect, cameras, depth)
                expect = list(ep.images)
                yield ep
            except SkipEpisode as e:
                skipped.append((path, str(e)))
            if progress:
                progress.advance(task)
    return gen(), skipped
