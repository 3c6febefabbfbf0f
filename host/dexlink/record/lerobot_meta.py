"""The meta/ folder of a LeRobot v3.0 dataset: info.json, stats.json, tasks.parquet, and
what an existing dataset says when episodes are appended to it.

info.json names the file layout (data_path, video_path with chunk-XXX/file-XXX), the size
at which a data or video file is closed and the next begun (data_files_size_in_mb,
video_files_size_in_mb), the features and their shapes, and the totals.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexlink.errors import UserError

INFO = Path("meta/info.json")
STATS = Path("meta/stats.json")
TASKS = Path("meta/tasks.parquet")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS_SIZE = 1000  # files per chunk-XXX folder
DATA_FILE_MB = 100.0  # LeRobot's defaults
VIDEO_FILE_MB = 200.0
IMAGE_PREFIX = "observation.images."
INDEX_FEATURES = ("frame_index", "episode_index", "index", "task_index")
QUANTILES = (1, 10, 50, 90, 99)


class DatasetError(UserError):
    """An existing dataset that episodes cannot be appended to; the message says why."""


def next_file(chunk: int, file: int, chunks_size: int = CHUNKS_SIZE) -> tuple[int, int]:
    """The file after (chunk, file): the next index, or the first of the next chunk."""
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


def write_json(path: Path, obj, indent: int = 2) -> None:
    """Whole or not at all: a crash never leaves half a metadata file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent))
    os.replace(tmp, path)


# --- features ----------------------------------------------------------------------------
def vector_feature(names: list[str]) -> dict:
    return {"dtype": "float32", "shape": [len(names)], "names": names}


def video_feature(shape: tuple[int, int, int], fps: int) -> dict:
    h, w, c = shape
    return {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                     "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": c, "has_audio": False}}


def features(joint_names: list[str], contact_names: list[str], shapes: dict, fps: int) -> dict:
    out = {"observation.state": vector_feature(joint_names),
           "action": vector_feature(joint_names),
           "observation.contact": vector_feature(contact_names)}
    for key, shape in shapes.items():
        out[IMAGE_PREFIX + key] = video_feature(shape, fps)
    out["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for k in INDEX_FEATURES:
        out[k] = {"dtype": "int64", "shape": [1], "names": None}
    return out


def info(features_: dict, fps: int, robot_type: str, episodes: int, frames: int, tasks: int,
         data_mb: float, video_mb: float) -> dict:
    videos = any(f["dtype"] == "video" for f in features_.values())
    return {"codebase_version": "v3.0", "robot_type": robot_type,
            "total_episodes": episodes, "total_frames": frames, "total_tasks": tasks,
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": data_mb,
            "video_files_size_in_mb": video_mb, "fps": fps,
            "splits": {"train": "0:%d" % episodes}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if videos else None, "features": features_}


# --- stats -------------------------------------------------------------------------------
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
        for q in QUANTILES:
            out["q%02d" % q] = np.quantile(x, q / 100, axis=0)
        return {k: v.tolist() for k, v in out.items()}


def image_stats(samples: list[np.ndarray]) -> dict:
    """Per-channel stats of RGB images scaled to [0, 1], shaped (3, 1, 1) as LeRobot keeps them."""
    x = np.stack(samples).astype(np.float64).reshape(-1, 3) / 255.0
    stats = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    for q in QUANTILES:
        stats["q%02d" % q] = np.quantile(x, q / 100, axis=0)
    out = {k: v.reshape(3, 1, 1).tolist() for k, v in stats.items()}
    out["count"] = [len(samples)]
    return out


def merge_stats(a: dict, b: dict) -> dict:
    """Stats of two sets of frames from the stats of each: exact for count, min, max, mean
    and std; quantiles are the count-weighted mean of both sides' (as LeRobot aggregates)."""
    na, nb = float(np.sum(a["count"])), float(np.sum(b["count"]))
    wa, wb = na / (na + nb), nb / (na + nb)
    mean_a, mean_b = np.asarray(a["mean"]), np.asarray(b["mean"])
    mean = wa * mean_a + wb * mean_b
    var = (wa * (np.asarray(a["std"]) ** 2 + (mean_a - mean) ** 2)
           + wb * (np.asarray(b["std"]) ** 2 + (mean_b - mean) ** 2))
    out = {"min": np.minimum(a["min"], b["min"]), "max": np.maximum(a["max"], b["max"]),
           "mean": mean, "std": np.sqrt(var),
           "count": np.asarray(a["count"]) + np.asarray(b["count"])}
    for q in QUANTILES:
        k = "q%02d" % q
        if k in a and k in b:
            out[k] = wa * np.asarray(a[k]) + wb * np.asarray(b[k])
    return {k: np.asarray(v).tolist() for k, v in out.items()}


# --- tasks -------------------------------------------------------------------------------
def write_tasks(path: Path, tasks: dict[str, int]) -> None:
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
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_tasks(path: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    names = t.column("__index_level_0__").to_pylist() if "__index_level_0__" in t.column_names \
        else t.column("task").to_pylist()
    return dict(zip(names, t.column("task_index").to_pylist()))


# --- an existing dataset -----------------------------------------------------------------
@dataclass
class ExistingDataset:
    """What a dataset already holds, to go on from: totals, tasks, stats, and the last file
    of each series (data, each camera's videos, episodes metadata)."""

    info: dict
    stats: dict
    tasks: dict[str, int]
    last_files: dict[str, tuple[int, int]] = field(default_factory=dict)  # series -> (chunk, file)

    @property
    def image_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {k.removeprefix(IMAGE_PREFIX): tuple(f["shape"])
                for k, f in self.info["features"].items() if f["dtype"] == "video"}

    @classmethod
    def read(cls, root: Path) -> "ExistingDataset":
        where = root / INFO
        try:
            info_ = json.loads(where.read_text())
            stats = json.loads((root / STATS).read_text())
            tasks = read_tasks(root / TASKS)
        except (OSError, ValueError, KeyError) as e:
            raise DatasetError("%s: cannot append to it: %s" % (root, e)) from None
        if info_.get("codebase_version") != "v3.0" or "features" not in info_:
            raise DatasetError("%s: not a LeRobot v3.0 dataset (codebase_version %r)"
                               % (where, info_.get("codebase_version")))
        last = {"data": last_file(root / "data"), "episodes": last_file(root / "meta/episodes")}
        for key in info_["features"]:
            if info_["features"][key]["dtype"] == "video":
                last[key] = last_file(root / "videos" / key)
        return cls(info_, stats, tasks, last)

    def check_same(self, fps: int, robot_type: str, features_: dict) -> None:
        """Refuse new episodes that do not fit: another rate, robot, joints or cameras."""
        where = "%s" % INFO
        if self.info.get("fps") != fps:
            raise DatasetError("%s: fps is %s; these episodes would be at %d (use --fps %s)"
                               % (where, self.info.get("fps"), fps, self.info.get("fps")))
        if self.info.get("robot_type") != robot_type:
            raise DatasetError("%s: robot_type is %r, not %r" % (where, self.info.get("robot_type"),
                                                                 robot_type))
        old = self.info["features"]
        for key in sorted(set(old) | set(features_)):
            if key not in old or key not in features_:
                raise DatasetError("%s: features differ: %s is %s" % (
                    where, key, "new" if key not in old else "missing from these episodes"))
            a, b = old[key], features_[key]
            if list(a.get("shape", [])) != list(b.get("shape", [])) or \
                    a.get("names") != b.get("names"):
                raise DatasetError("%s: feature %s is %s %s there, %s %s in these episodes" % (
                    where, key, a.get("shape"), a.get("names") or "", b.get("shape"),
                    b.get("names") or ""))


def last_file(folder: Path) -> tuple[int, int] | None:
    """(chunk, file) of the last chunk-XXX/file-YYY.* in a folder; None when there is none."""
    found = []
    for p in folder.glob("chunk-*/file-*.*"):
        try:
            found.append((int(p.parent.name[6:]), int(p.stem[5:])))
        except ValueError:
            continue
    return max(found) if found else None
