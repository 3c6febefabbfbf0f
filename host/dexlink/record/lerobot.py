"""Writing a LeRobot v3.0 dataset from aligned episodes, new or appended to.

Files are split by size as LeRobot does: the frames of each episode go into the current
data/chunk-XXX/file-YYY.parquet (one row group per episode), and each camera's frames
into the current videos/<key>/chunk-XXX/file-YYY.mp4, until that file would grow past
data_files_size_in_mb / video_files_size_in_mb; then the next file begins (an episode is
never split). Appending starts new files after the last ones and rewrites only meta/.

Every camera is resized to one shape unless asked otherwise (LeRobot's diffusion policy
refuses images of different shapes): by default the smallest camera's; cameras are
encoded in parallel, each on its own thread (the decoders and the encoder release the GIL).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dexlink.record import lerobot_meta as meta
from dexlink.record.align import AlignedEpisode

NATIVE = "native"  # image_size: every camera at its own size


class VideoFile:
    """One mp4 (H.264, yuv420p, a keyframe every 2 frames so any frame decodes fast), the
    episodes one after the other; counts its frames and encoded bytes."""

    def __init__(self, path: Path, fps: int, width: int, height: int):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = Fraction(1, fps)
        self.stream.options = {"g": "2", "crf": "23", "preset": "veryfast"}
        self.frames = 0
        self.bytes = 0
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        self.frames += 1
        self._mux(self.stream.encode(frame))

    def _mux(self, packets) -> None:
        for packet in packets:
            self.bytes += packet.size
            self.container.mux(packet)

    def close(self) -> None:
        self._mux(self.stream.encode())
        self.container.close()


class FileSeries:
    """Where the next episode goes among chunk-XXX/file-YYY files of one kind: the current
    file, or the next one when the episode would take the current one past limit_mb (an
    estimate from the bytes per frame so far). Goes on after `last`, never writing to it."""

    def __init__(self, limit_mb: float, last: tuple[int, int] | None):
        self.limit = limit_mb * 1024 * 1024  # LeRobot's megabytes
        self.index = meta.next_file(*last) if last is not None else (0, 0)
        self.current = False  # a file is open at self.index
        self.size = self.frames = 0

    def begins_file(self, n_frames: int) -> bool:
        """Whether the next episode of n_frames starts a file (then at self.index)."""
        if not self.current:
            self.current = True
            return True
        per_frame = self.size / max(1, self.frames)
        if self.size + per_frame * n_frames < self.limit:
            return False
        self.index = meta.next_file(*self.index)
        self.size = self.frames = 0
        return True

    def wrote(self, size: int, frames: int) -> None:
        self.size, self.frames = size, frames


class VideoSeries:
    """One camera's videos: episodes appended to the current file, split by size."""

    def __init__(self, root: Path, feature: str, fps: int, shape: tuple[int, int, int],
                 limit_mb: float, last: tuple[int, int] | None, created: list[Path]):
        self.root, self.feature, self.fps, self.shape = root, feature, fps, shape
        self.files = FileSeries(limit_mb, last)
        self.video: VideoFile | None = None
        self.created = created

    def add(self, frames, n: int) -> dict:
        """Write an episode's n frames (RGB, any size: resized to the series' shape); the
        episode row's fields for this camera."""
        if self.files.begins_file(n):
            self.close()
            chunk, file = self.files.index
            path = self.root / meta.VIDEO_PATH.format(video_key=self.feature, chunk_index=chunk,
                                                      file_index=file)
            self.created.append(path)
            self.video = VideoFile(path, self.fps, self.shape[1], self.shape[0])
        start = self.video.frames
        for rgb in frames:
            self.video.write(rgb)
        self.files.wrote(self.video.bytes, self.video.frames)
        chunk, file = self.files.index
        f = "videos/%s/" % self.feature
        return {f + "chunk_index": chunk, f + "file_index": file,
                f + "from_timestamp": start / self.fps,
                f + "to_timestamp": self.video.frames / self.fps}

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None


class DataSeries:
    """The frames' parquet files: one row group per episode, split by size."""

    def __init__(self, root: Path, limit_mb: float, last: tuple[int, int] | None,
                 created: list[Path]):
        self.root = root
        self.files = FileSeries(limit_mb, last)
        self.writer = self.sink = None
        self.frames = 0
        self.created = created

    def add(self, table) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self.files.begins_file(table.num_rows):
            self.close()
            chunk, file = self.files.index
            path = self.root / meta.DATA_PATH.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.created.append(path)
            self.sink = open(path, "wb")
            self.writer = pq.ParquetWriter(self.sink, table.schema)
            self.frames = 0
        self.writer.write_table(table)
        self.frames += table.num_rows
        self.files.wrote(self.sink.tell(), self.frames)
        return self.files.index

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.sink.close()
            self.writer = self.sink = None


def fit(rgb: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """An image resized to shape (area averaging when shrinking)."""
    h, w = shape[:2]
    if rgb.shape[:2] == (h, w):
        return rgb
    shrink = rgb.shape[0] * rgb.shape[1] > h * w
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resized(ep: AlignedEpisode, key: str, shape: tuple[int, int, int],
            native: tuple[int, ...] | None = None):
    """The episode's frames of a camera as RGB of `shape`; a frame repeated (a camera
    slower than the dataset's rate) is decoded once. native: the camera's own shape, to
    decode its JPEGs straight at a half, quarter or eighth of it when that is still as
    large as `shape`."""
    reduce = 1
    if native is not None:
        while reduce < 8 and native[0] // (2 * reduce) >= shape[0] and \
                native[1] // (2 * reduce) >= shape[1]:
            reduce *= 2
    images = ep.images[key]
    rgb = None
    for i, data in enumerate(images):
        if i == 0 or data is not images[i - 1]:
            rgb = fit(ep.decode(key, i, reduce), shape)
        yield rgb


class LeRobotWriter:
    """A LeRobot v3.0 dataset being written: `add` each aligned episode, then `finish`
    (meta/ written last), or `abort` (the files this writer made are removed).

    image_size: (width, height) for every camera, NATIVE for each camera's own, or None:
    the existing dataset's shapes when appending, else the smallest camera's.
    """

    def __init__(self, out: Path, fps: int, robot_type: str = "dexlink",
                 image_size: tuple[int, int] | str | None = None,
                 data_file_mb: float = meta.DATA_FILE_MB, video_file_mb: float = meta.VIDEO_FILE_MB,
                 existing: meta.ExistingDataset | None = None, workers: int | None = None):
        self.out, self.fps, self.robot_type = Path(out), fps, robot_type
        self.image_size, self.existing = image_size, existing
        if existing is not None:  # the dataset's own split sizes, not today's defaults
            data_file_mb = existing.info.get("data_files_size_in_mb", data_file_mb)
            video_file_mb = existing.info.get("video_files_size_in_mb", video_file_mb)
        self.data_file_mb, self.video_file_mb = data_file_mb, video_file_mb
        self.created: list[Path] = []
        last = existing.last_files if existing is not None else {}
        self.data = DataSeries(self.out, data_file_mb, last.get("data"), self.created)
        episodes_file = last.get("episodes")
        self.episodes_file = meta.next_file(*episodes_file) if episodes_file else (0, 0)
        self.videos: dict[str, VideoSeries] = {}
        self.features: dict | None = None
        self.native: dict[str, tuple[int, ...]] = {}  # each camera's own shape
        self.tasks = dict(existing.tasks) if existing is not None else {}
        self.episode_index = existing.info["total_episodes"] if existing is not None else 0
        self.frame_index = existing.info["total_frames"] if existing is not None else 0
        self.rows: list[dict] = []
        self.stats = {k: meta.RunningStats() for k in (
            "observation.state", "action", "observation.contact", "timestamp") + meta.INDEX_FEATURES}
        self.image_samples: dict[str, list] = {}
        self.pool = ThreadPoolExecutor(workers or os.cpu_count() or 2,
                                       thread_name_prefix="export-video")

    @property
    def episodes(self) -> int:
        return len(self.rows)

    @property
    def frames(self) -> int:
        return sum(r["length"] for r in self.rows)

    def _shapes(self, ep: AlignedEpisode) -> dict[str, tuple[int, int, int]]:
        native = {key: ep.decode(key, 0).shape for key in ep.images}
        self.native = native
        if self.image_size == NATIVE:
            return native
        if self.image_size is not None:
            w, h = self.image_size
            return {key: (h, w, 3) for key in native}
        if self.existing is not None:
            old = self.existing.image_shapes
            return {key: old.get(key, shape) for key, shape in native.items()}
        smallest = min(native.values(), key=lambda s: (s[0] * s[1], s), default=None)
        return {key: smallest for key in native}

    def _start(self, ep: AlignedEpisode) -> None:
        """The features, from the first episode (checked against the dataset appended to)."""
        shapes = self._shapes(ep)
        contact = [c + m for c in ep.tactile for m in ("_area", "_intensity")]
        self.features = meta.features(ep.joint_names, contact, shapes, self.fps)
        if self.existing is not None:
            self.existing.check_same(self.fps, self.robot_type, self.features)
        for key, shape in shapes.items():
            feature = meta.IMAGE_PREFIX + key
            last = self.existing.last_files.get(feature) if self.existing is not None else None
            self.videos[key] = VideoSeries(self.out, feature, self.fps, shape, self.video_file_mb,
                                           last, self.created)

    def add(self, ep: AlignedEpisode) -> None:
        import pyarrow as pa

        if self.features is None:
            self._start(ep)
        n = len(ep)
        e_idx = self.episode_index
        task_index = self.tasks.setdefault(ep.task, len(self.tasks))
        jobs = {key: self.pool.submit(self._encode, ep, key) for key in ep.images}
        columns = {"observation.state": ep.state, "action": ep.action,
                   "observation.contact": ep.contact, "timestamp": ep.t_s.astype(np.float32),
                   "frame_index": np.arange(n), "episode_index": np.full(n, e_idx),
                   "index": self.frame_index + np.arange(n), "task_index": np.full(n, task_index)}
        for k, v in columns.items():
            self.stats[k].add(v if v.ndim == 2 else v[:, None])
        table = pa.table({k: fixed_list(v) if v.ndim == 2 else pa.array(
            v, pa.float32() if k == "timestamp" else pa.int64()) for k, v in columns.items()})
        chunk, file = self.data.add(table)
        row = {"episode_index": e_idx, "tasks": [ep.task], "length": n,
               "data/chunk_index": chunk, "data/file_index": file,
               "dataset_from_index": self.frame_index, "dataset_to_index": self.frame_index + n,
               "meta/episodes/chunk_index": self.episodes_file[0],
               "meta/episodes/file_index": self.episodes_file[1]}
        for key, job in jobs.items():
            fields, samples = job.result()
            row.update(fields)
            self.image_samples.setdefault(meta.IMAGE_PREFIX + key, []).extend(samples)
        self.rows.append(row)
        self.episode_index += 1
        self.frame_index += n

    def _encode(self, ep: AlignedEpisode, key: str) -> tuple[dict, list]:
        """One camera's frames of an episode into its videos (on a pool thread); the row's
        fields and a few subsampled frames for the image stats."""
        n, every = len(ep), max(1, len(ep) // 8)
        samples = []

        def frames():
            for i, rgb in enumerate(resized(ep, key, self.videos[key].shape,
                                            self.native.get(key))):
                if i % every == 0:
                    samples.append(rgb[::8, ::8])
                yield rgb
        return self.videos[key].add(frames(), n), samples

    def _close_files(self) -> None:
        self.pool.shutdown(wait=True)
        for v in self.videos.values():
            v.close()
        self.data.close()

    def finish(self) -> None:
        """Close the files and write meta/ (info.json last)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._close_files()
        if not self.rows:
            return
        chunk, file = self.episodes_file
        path = self.out / meta.EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created.append(path)
        pq.write_table(pa.Table.from_pylist(self.rows), path)
        meta.write_tasks(self.out / meta.TASKS, self.tasks)
        stats = {k: s.result() for k, s in self.stats.items()}
        stats.update({k: meta.image_stats(v) for k, v in self.image_samples.items()})
        if self.existing is not None:
            old = self.existing.stats
            stats = {k: meta.merge_stats(old[k], v) if k in old else v for k, v in stats.items()}
        meta.write_json(self.out / meta.STATS, stats, indent=1)
        meta.write_json(self.out / meta.INFO, meta.info(
            self.features, self.fps, self.robot_type, self.episode_index, self.frame_index,
            len(self.tasks), self.data_file_mb, self.video_file_mb))

    def abort(self) -> None:
        """Remove what this writer made: the dataset is as it was before."""
        try:
            self._close_files()
        finally:
            for p in self.created:
                p.unlink(missing_ok=True)


def fixed_list(values: np.ndarray):
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()),
                                             values.shape[1])
