"""Export a session's episodes to training datasets: LeRobot v3.0, or a zarr replay buffer.

Episodes are resampled by capture time (dexlink.record.align); a broken episode is skipped
and its reason listed. LeRobot datasets are written by dexlink.record.lerobot: every
camera at one image size by default (what LeRobot's diffusion policy needs), files split
by size, episodes appended to an existing dataset with `append`.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from dexlink.errors import UsageError, UserError
from dexlink.record.align import (  # noqa: F401 (API)
    AlignedEpisode,
    SkipEpisode,
    Skipped,
    align,
    aligned_episodes,
    image_key,
    joint_names,
    latest_at_or_before,
)
from dexlink.record.lerobot import NATIVE, LeRobotWriter
from dexlink.record.lerobot_meta import DATA_FILE_MB, INFO, VIDEO_FILE_MB, ExistingDataset


def parse_image_size(text: str | None) -> tuple[int, int] | str | None:
    """--image-size: WxH (e.g. 320x240), `native`, or None (the default)."""
    if text is None or text == NATIVE:
        return text
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or not (0 < int(m[1]) <= 8192 and 0 < int(m[2]) <= 8192):
        raise UsageError("--image-size %r: expected WIDTHxHEIGHT, e.g. 320x240, or native" % text)
    w, h = int(m[1]), int(m[2])
    if w % 2 or h % 2:  # H.264 in yuv420p halves both
        raise UsageError("--image-size %s: width and height must be even" % text)
    return w, h


def parse_cameras(text: str | None) -> list[str] | None:
    """--cameras: image keys (rgb, tactile_index) or camera names (rgbd, index), comma
    separated; `none` for no images; None: every camera."""
    if text is None:
        return None
    names = [x.strip() for x in text.split(",") if x.strip()]
    if names == ["none"]:
        return []
    if not names:
        raise UsageError("--cameras: name at least one camera (e.g. rgb,tactile_index), or none")
    keys = []
    for name in names:
        key = "rgb" if name == "rgbd" else name if name == "rgb" or name.startswith("tactile_") \
            else "tactile_" + name
        if key not in keys:
            keys.append(key)
    return keys


def replace_output(out: Path, session: Path, marker: str) -> None:
    """Clear `out` for a new dataset. Only an earlier export (it holds `marker`) or an empty
    directory is replaced: a mistyped --out never deletes a user's files or the session."""
    check_output(out, session)
    if out.exists() and any(out.iterdir()):
        if not (out / marker).exists():
            raise UserError("%s: not empty and not a dataset written by dexlink export: not "
                            "replacing it (choose another --out, or remove it)" % out)
        shutil.rmtree(out)


def check_output(out: Path, session: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError("%s: exists and is not a directory (--out names a dataset directory)" % out)
    here, src = out.resolve(), Path(session).resolve()
    if here == src or here in src.parents:
        raise UserError("%s: the dataset would replace the session %s itself: choose another "
                        "--out" % (out, session))


# --- LeRobot v3.0 -----------------------------------------------------------------------
def export_lerobot(session: Path, out: Path, fps: int = 30, robot_type: str = "dexlink",
                   progress=None, *, image_size: tuple[int, int] | str | None = None,
                   cameras: list[str] | None = None, append: bool = False,
                   data_file_mb: float = DATA_FILE_MB, video_file_mb: float = VIDEO_FILE_MB,
                   workers: int | None = None) -> tuple[int, int, Skipped]:
    """Write (or with `append`, extend) a LeRobot v3.0 dataset; returns (episodes added,
    frames added, skipped). cameras: image keys to export (None: all; with append, the
    dataset's); image_size: see LeRobotWriter; workers: cameras encoded at once (None: one
    per core)."""
    out = Path(out)
    existing = None
    if append and (out / INFO).exists():
        check_output(out, session)
        existing = ExistingDataset.read(out)
        if cameras is None:
            cameras = sorted(existing.image_shapes)
    else:
        replace_output(out, session, str(INFO))
    episodes, skipped = aligned_episodes(session, fps, progress, cameras, depth=False)
    writer = LeRobotWriter(out, fps, robot_type, image_size, data_file_mb, video_file_mb,
                           existing, workers)
    try:
        for ep in episodes:
            writer.add(ep)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return writer.episodes, writer.frames, skipped


# --- zarr replay buffer -------------------------------------------------------------------
def export_zarr(session: Path, out: Path, fps: int = 30, progress=None,
                cameras: list[str] | None = None) -> tuple[int, int, Skipped]:
    """The diffusion-policy replay buffer: data/<key> time-first, meta/episode_ends."""
    import zarr

    out = Path(out)
    replace_output(out, session, ".zgroup")
    root = zarr.open_group(str(out), mode="w", zarr_format=2)
    data, meta = root.create_group("data"), root.create_group("meta")
    episodes, skipped = aligned_episodes(session, fps, progress, cameras)
    arrays: dict[str, object] = {}
    ends: list[int] = []
    total = 0

    def append(key, values, chunk_rows):
        if key not in arrays:
            arrays[key] = data.create_array(key, shape=(0,) + values.shape[1:],
                                            dtype=values.dtype,
                                            chunks=(chunk_rows,) + values.shape[1:])
        arrays[key].append(values, axis=0)

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
