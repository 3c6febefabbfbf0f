"""Export a session's episodes to training datasets: LeRobot v3.0, or a zarr replay buffer.

Every stream is resampled at the target rate by capture time: for each target time the
latest sample at or before it (as diffusion-policy code does), never by arrival order
or a nominal rate. Targets run from the moment every stream has started to the moment
the first one ends, so each frame has a sample of every stream.

observation.state = the hand's present positions, action = the goals (the exoskeleton's
command), both in degrees; observation.contact = area and intensity per tactile camera;
images under observation.images.* (tactile_<finger>, rgb). A broken episode is skipped
and its reason listed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from dexproto import catalog

from dexlink.errors import UserError
from dexlink.record import schema
from dexlink.record.reader import episode_files, read_episode

CHUNK_FILE = "chunk-000/file-000"


class SkipEpisode(Exception):
    """This episode cannot be exported; the message says why."""


@dataclass
class AlignedEpisode:
    path: Path
    task: str
    t_s: np.ndarray  # target times from the episode's first target, seconds
    state: np.ndarray  # (n, joints) float32 degrees
    action: np.ndarray
    contact: np.ndarray  # (n, 2 * tactile cameras) float32
    images: dict = field(default_factory=dict)  # key -> list of n encoded images (bytes)
    depth: list | None = None  # n 16-bit PNGs, when there is an RGB-D camera

    def __len__(self):
        return len(self.t_s)

    def decode(self, key: str, i: int) -> np.ndarray:
        """Image i of a camera as RGB uint8."""
        _, data = schema.image_bytes(self.images[key][i])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def decode_depth(self, i: int) -> np.ndarray:
        _, data = schema.image_bytes(self.depth[i])
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def image_key(topic: str) -> str:
    return "rgb" if topic == "/rgbd/color" else "tactile_" + schema.camera_of(topic)


def latest_at_or_before(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the latest sample at or before each target (targets >= times[0])."""
    return np.searchsorted(times, targets, side="right") - 1


def align(path: Path, fps: float, expect_images: list[str] | None = None) -> AlignedEpisode:
    """Resample one episode file at fps; raises SkipEpisode with the reason it cannot."""
    try:
        ep = read_episode(path)
    except (OSError, ValueError) as e:
        raise SkipEpisode("cannot read it: %s" % e) from None
    if not ep.complete:
        raise SkipEpisode("the file is cut short (%s); run `dexlink recover %s` first"
                          % (ep.error, path))
    tel = ep.telemetry()
    if not tel or len(tel["t_ns"]) < 2:
        raise SkipEpisode("it has no telemetry")
    tel = known_present(tel)
    if len(tel["t_ns"]) < 2:
        raise SkipEpisode("no servo position was read back in its telemetry")
    image_topics = sorted(t for t in ep.streams if t.endswith("/image") or t == "/rgbd/color")
    keys = [image_key(t) for t in image_topics]
    if expect_images is not None and keys != expect_images:
        raise SkipEpisode("its cameras (%s) differ from the first episode's (%s)"
                          % (", ".join(keys) or "none", ", ".join(expect_images) or "none"))
    tactile = [schema.camera_of(t) for t in image_topics if t.startswith("/tactile/")]
    needed = [schema.TELEMETRY] + image_topics + [schema.contact_topic(c) for c in tactile]
    if "/rgbd/color" in image_topics:
        needed.append("/rgbd/depth")
    for topic in needed:
        if topic not in ep.streams or not len(ep.streams[topic]):
            raise SkipEpisode("stream %s is empty" % topic)
    start = max([int(ep.streams[t].times[0]) for t in needed] + [int(tel["t_ns"][0])])
    end = min(int(ep.streams[t].times[-1]) for t in needed)
    step = 1e9 / fps
    n = int((end - start) // step) + 1 if end >= start else 0
    if n < 2:
        raise SkipEpisode("its streams overlap for less than two frames at %g fps" % fps)
    targets = start + np.round(np.arange(n) * step).astype(np.int64)

    i = latest_at_or_before(tel["t_ns"], targets)
    out = AlignedEpisode(Path(path), ep.info.get("task", ""), np.arange(n) / fps,
                         tel["present_cdeg"][i].astype(np.float32) / 100,
                         tel["goal_cdeg"][i].astype(np.float32) / 100,
                         np.zeros((n, 2 * len(tactile)), np.float32))
    for k, cam in enumerate(tactile):
        c = ep.contact(cam)
        j = latest_at_or_before(c["t_ns"], targets)
        out.contact[:, 2 * k] = c["area"][j]
        out.contact[:, 2 * k + 1] = c["intensity"][j]
    for topic, key in zip(image_topics, keys):
        s = ep.streams[topic]
        out.images[key] = [s.data[j] for j in latest_at_or_before(s.times, targets)]
    if "/rgbd/depth" in ep.streams:
        s = ep.streams["/rgbd/depth"]
        out.depth = [s.data[j] for j in latest_at_or_before(s.times, targets)]
    return out


def known_present(tel: dict) -> dict:
    """Telemetry without the samples whose present position was not read back yet.

    PRESENT_UNKNOWN is a placeholder, not an angle (the first cycles after a boot, with
    ST_SERVO_TIMEOUT): those samples are dropped. A joint unknown in every sample has a
    servo without read-back: its state is its goal (all that is known of it).
    """
    present = tel["present_cdeg"]
    unknown = present == catalog.PRESENT_UNKNOWN
    blind = unknown.all(axis=0)
    keep = ~(unknown & ~blind).any(axis=1)
    out = {k: v[keep] for k, v in tel.items()}
    out["present_cdeg"] = np.where(blind, out["goal_cdeg"], out["present_cdeg"])
    return out


def joint_names(path: Path, n: int) -> list[str]:
    names = read_episode(path, keep=lambda t: False).info.get("joint_names", "")
    names = [x for x in names.split(",") if x]
    return names if len(names) == n else ["joint_%d" % j for j in range(n)]


class Skipped(list):
    """(file, reason) of every episode left out."""


def aligned_episodes(session: Path, fps: float, progress=None):
    """Yield AlignedEpisodes of a session (or file); skipped ones go to the returned list."""
    skipped = Skipped()

    def gen():
        expect = None
        files = episode_files(session)
        task = progress.add_task("export", total=len(files)) if progress else None
        for path in files:
            try:
                ep = align(path, fps, expect)
                expect = list(ep.images)
                yield ep
            except SkipEpisode as e:
                skipped.append((path, str(e)))
            if progress:
                progress.advance(task)
    return gen(), skipped


# --- LeRobot v3.0 -----------------------------------------------------------------------
class VideoWriter:
    """One mp4 (H.264, yuv420p) per camera, episodes one after the other."""

    def __init__(self, path: Path, fps: int, width: int, height: int):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, fps)
        self.stream.options = {"g": "2", "crf": "23", "preset": "veryfast"}
        self.frames = 0
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        self.frames += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class RunningStats:
    """min, max, mean, std, count and quantiles of a feature, over all frames."""

    def __init__(self):
        self.parts: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        self.parts.append(np.asarray(values, dtype=np.float64))

    def result(self) -> dict:
        x = np.concatenate(self.parts, axis=0)
        out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0),
               "count": np.array([len(x)])}
        for q in (1, 10, 50, 90, 99):
            out["q%02d" % q] = np.quantile(x, q / 100, axis=0)
        return {k: v.tolist() for k, v in out.items()}


def image_stats(samples: list[np.ndarray]) -> dict:
    """Per-channel stats of RGB images scaled to [0, 1], shaped (3, 1, 1) as LeRobot keeps them."""
    x = np.stack(samples).astype(np.float64).reshape(-1, 3) / 255.0
    stats = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    for q in (1, 10, 50, 90, 99):
        stats["q%02d" % q] = np.quantile(x, q / 100, axis=0)
    out = {k: v.reshape(3, 1, 1).tolist() for k, v in stats.items()}
    out["count"] = [len(samples)]
    return out


def _fixed_list(values: np.ndarray):
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()),
                                             values.shape[1])


def replace_output(out: Path, session: Path, marker: str) -> None:
    """Clear `out` for a new dataset. Only an earlier export (it holds `marker`) or an empty
    directory is replaced: a mistyped --out never deletes a user's files or the session."""
    if out.exists() and not out.is_dir():
        raise UserError("%s: exists and is not a directory (--out names a dataset directory)" % out)
    here, src = out.resolve(), Path(session).resolve()
    if here == src or here in src.parents:
        raise UserError("%s: the dataset would replace the session %s itself: choose another "
                        "--out" % (out, session))
    if out.exists() and any(out.iterdir()):
        if not (out / marker).exists():
            raise UserError("%s: not empty and not a dataset written by dexlink export: not "
                            "replacing it (choose another --out, or remove it)" % out)
        shutil.rmtree(out)


def export_lerobot(session: Path, out: Path, fps: int = 30, robot_type: str = "dexlink",
                   progress=None) -> tuple[int, int, Skipped]:
    """Write a LeRobot v3.0 dataset; returns (episodes, frames, skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    replace_output(out, session, "meta/info.json")
    episodes, skipped = aligned_episodes(session, fps, progress)
    videos: dict[str, VideoWriter] = {}
    rows = {k: [] for k in ("observation.state", "action", "observation.contact", "timestamp",
                            "frame_index", "episode_index", "index", "task_index")}
    stats = {k: RunningStats() for k in ("observation.state", "action", "observation.contact",
                                         "timestamp", "frame_index", "episode_index", "index",
                                         "task_index")}
    image_samples: dict[str, list] = {}
    ep_rows, tasks, shapes = [], {}, {}
    first = None
    total = 0
    for e_idx, ep in enumerate(episodes):
        first = first or ep
        n = len(ep)
        task_index = tasks.setdefault(ep.task, len(tasks))
        columns = {"observation.state": ep.state, "action": ep.action,
                   "observation.contact": ep.contact,
                   "timestamp": ep.t_s.astype(np.float32),
                   "frame_index": np.arange(n), "episode_index": np.full(n, e_idx),
                   "index": total + np.arange(n), "task_index": np.full(n, task_index)}
        for k, v in columns.items():
            rows[k].append(v)
            stats[k].add(v if v.ndim == 2 else v[:, None])
        row = {"episode_index": e_idx, "tasks": [ep.task], "length": n,
               "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": total, "dataset_to_index": total + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for key in ep.images:
            feature = "observation.images." + key
            start = videos[feature].frames if feature in videos else 0
            for i in range(n):
                rgb = ep.decode(key, i)
                if feature not in videos:
                    shapes[feature] = rgb.shape
                    videos[feature] = VideoWriter(
                        out / "videos" / feature / (CHUNK_FILE + ".mp4"), fps, rgb.shape[1],
                        rgb.shape[0])
                videos[feature].write(rgb)
                if i % max(1, n // 8) == 0:
                    image_samples.setdefault(feature, []).append(rgb[::8, ::8])
            row.update({"videos/%s/chunk_index" % feature: 0,
                        "videos/%s/file_index" % feature: 0,
                        "videos/%s/from_timestamp" % feature: start / fps,
                        "videos/%s/to_timestamp" % feature: (start + n) / fps})
        ep_rows.append(row)
        total += n
    for v in videos.values():
        v.close()
    if not ep_rows:
        return 0, 0, skipped

    data = {}
    for k, parts in rows.items():
        v = np.concatenate(parts)
        data[k] = _fixed_list(v) if v.ndim == 2 else pa.array(
            v, pa.float32() if k == "timestamp" else pa.int64())
    (out / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(data), out / "data" / (CHUNK_FILE + ".parquet"))
    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), out / "meta" / "episodes" / (CHUNK_FILE + ".parquet"))
    _write_tasks(out / "meta" / "tasks.parquet", tasks)

    n_joints = first.state.shape[1]
    names = joint_names(first.path, n_joints)
    tactile = [k.removeprefix("tactile_") for k in first.images if k.startswith("tactile_")]
    features = {
        "observation.state": {"dtype": "float32", "shape": [n_joints], "names": names},
        "action": {"dtype": "float32", "shape": [n_joints], "names": names},
        "observation.contact": {"dtype": "float32", "shape": [2 * len(tactile)],
                                "names": [c + m for c in tactile for m in ("_area", "_intensity")]},
    }
    for feature, (h, w, c) in shapes.items():
        features[feature] = {"dtype": "video", "shape": [h, w, c],
                             "names": ["height", "width", "channels"],
                             "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                                      "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                      "video.fps": fps, "video.channels": c, "has_audio": False}}
    for k in ("timestamp",):
        features[k] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "robot_type": robot_type,
            "total_episodes": len(ep_rows), "total_frames": total, "total_tasks": len(tasks),
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": fps, "splits": {"train": "0:%d" % len(ep_rows)},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": ("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
                           if videos else None),
            "features": features}
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    all_stats = {k: s.result() for k, s in stats.items()}
    all_stats.update({k: image_stats(v) for k, v in image_samples.items()})
    (out / "meta" / "stats.json").write_text(json.dumps(all_stats, indent=1))
    return len(ep_rows), total, skipped


def _write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet: task strings as the (pandas) index, with their task_index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.0.0"}
    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()),
                      "__index_level_0__": pa.array(list(tasks), pa.string())})
    table = table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    pq.write_table(table, path)


# --- zarr replay buffer -------------------------------------------------------------------
def export_zarr(session: Path, out: Path, fps: int = 30, progress=None) -> tuple[int, int, Skipped]:
    """The diffusion-policy replay buffer: data/<key> time-first, meta/episode_ends."""
    import zarr

    out = Path(out)
    replace_output(out, session, ".zgroup")
    root = zarr.open_group(str(out), mode="w", zarr_format=2)
    data, meta = root.create_group("data"), root.create_group("meta")
    episodes, skipped = aligned_episodes(session, fps, progress)
    arrays: dict[str, object] = {}
    ends: list[int] = []
    total = 0

    def append(key, values, chunk_rows):
        if key not in arrays:
            arrays[key] = data.create_array(key, shape=(0,) + values.shape[1:],
                                            dtype=values.dtype,
                                            chunks=(chunk_rows,) + values.shape[1:])
        a = arrays[key]
        a.append(values, axis=0)

    for ep in episodes:
        n = len(ep)
        append("state", ep.state, 1024)
        append("action", ep.action, 1024)
        append("contact", ep.contact, 1024)
        append("timestamp", ep.t_s.astype(np.float64), 1024)
        for key in ep.images:
            append("img_" + key, np.stack([ep.decode(key, i) for i in range(n)]), 1)
        if ep.depth is not None:
            append("depth", np.stack([ep.decode_depth(i) for i in range(n)]), 1)
        total += n
        ends.append(total)
    meta.create_array("episode_ends", data=np.array(ends, dtype=np.int64))
    return len(ends), total, skipped
