"""Intel RealSense RGB-D through the optional `pyrealsense2` (pip install 'dexlink[realsense]').

Colour (rgb8) and depth (z16) at the same size and rate; depth is aligned to colour with
`rs.align`, and the depth scale (metres per unit) travels with every frame.
"""
from __future__ import annotations

import numpy as np

from dexlink.capture.base import Camera

INSTALL_HINT = ("RealSense cameras need pyrealsense2: pip install 'dexlink[realsense]' "
                "(or use --sim for a simulated RGB-D camera)")


def import_realsense():
    """pyrealsense2, imported only when a RealSense camera is asked for."""
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return rs


class RealSenseCamera(Camera):
    kind = "rgbd"

    def __init__(self, name: str = "rgbd", serial: str | None = None, width: int = 640,
                 height: int = 480, fps: int = 30, stall_s: float = 1.0):
        super().__init__(name, fps, width, height, stall_s)
        self.serial = serial
        self._pipe = self._align = None

    def _open(self):
        rs = import_realsense()
        cfg = rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.bgr8, int(self.fps))
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, int(self.fps))
        self._pipe = rs.pipeline()
        profile = self._pipe.start(cfg)
        self.depth_scale = profile.get_device().first_depth_sensor().get_depth_scale()
        self._align = rs.align(rs.stream.color)

    def _grab(self):
        try:
            frames = self._pipe.wait_for_frames(int(self.stall_ns // 1_000_000) or 1000)
        except RuntimeError:
            return None  # timed out: the device went away
        frames = self._align.process(frames)
        color, depth = frames.get_color_frame(), frames.get_depth_frame()
        if not color or not depth:
            return None
        return (np.asanyarray(color.get_data()).copy(), np.asanyarray(depth.get_data()).copy())

    def _close(self):
        if self._pipe is not None:
            try:
                self._pipe.stop()
            finally:
                self._pipe = None
