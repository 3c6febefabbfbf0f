"""A camera's frames of a LeRobot v3.0 dataset, decoded with PyAV and resized once.

Episodes share mp4 files one after the other; row r of episode e shows the file's frame
at from_timestamp(e) + timestamp(r), so frames are matched by presentation time, never
by decoding order alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dexlink.errors import FileFormatError
from dexlink.learn.images import fit_image


def video_frames(path: Path, fps: float, hw) -> dict[int, np.ndarray]:
    """Frame number (presentation time x fps, rounded) -> RGB frame resized to hw."""
    import av

    if not path.is_file():
        raise FileFormatError("%s: missing video" % path)
    frames = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else len(frames) / fps
                frames[int(round(t * fps))] = fit_image(frame.to_ndarray(format="rgb24"), hw)
    except (av.FFmpegError, IndexError, ValueError) as e:
        raise FileFormatError("%s: unreadable video (%s)" % (path, e)) from None
    return frames


def decode_camera(ds, key: str, hw, progress=None) -> np.ndarray:
    """(rows, h, w, 3) uint8: the frame of camera `key` for every row of the dataset."""
    pattern = ds.info.get("video_path")
    if not pattern:
        raise FileFormatError("%s: no video_path" % (ds.root / "meta" / "info.json"))
    files: dict[Path, list] = {}
    for row, (a, b) in zip(ds.episode_meta, ds.episodes):
        try:
            rel = pattern.format(video_key=key, chunk_index=row["videos/%s/chunk_index" % key],
                                 file_index=row["videos/%s/file_index" % key])
            start = float(row["videos/%s/from_timestamp" % key])
        except (KeyError, TypeError, ValueError):
            raise FileFormatError("%s: episode %s has no video entry for %s" % (
                ds.root / "meta" / "episodes", row.get("episode_index"), key)) from None
        files.setdefault(ds.root / rel, []).append((a, b, start))
    out = np.zeros((ds.n, int(hw[0]), int(hw[1]), 3), np.uint8)
    task = progress.add_task("decode %s" % key, total=len(files)) if progress else None
    for path, spans in files.items():
        frames = video_frames(path, ds.fps, hw)
        for a, b, start in spans:
            for r in range(a, b):
                k = int(round((start + float(ds.timestamps[r])) * ds.fps))
                if k not in frames:
                    raise FileFormatError("%s: no frame at %.3f s (row %d of the dataset)"
                                          % (path, k / ds.fps, r))
                out[r] = frames[k]
        if progress:
            progress.advance(task)
    return out
