"""Sensors from the physics: visuotactile fingertip images and an RGB-D camera.

- GelShader turns a pad's per-taxel penetration depth (MuJoCo's `tactile` sensor) into
  what a GelSight/DIGIT-like camera shows: the lit, marker-dotted gel when nothing
  touches, and where something presses, an imprint shaded by the slope of the pressed
  surface under three coloured lights plus a brightening with depth. Like Taxim, the
  shading is a lookup (slope -> colour change, depth -> brightness), computed once, so a
  frame costs an upsample, two table look-ups and a saturating add.
- RGBDRenderer renders the scene's camera offscreen (EGL, no shadows) into BGR colour and
  depth in millimetres (uint16), the frame types the recorder takes from a RealSense.
- WorldTactileCamera and WorldRGBDCamera are capture cameras (dexlink.capture) on a
  World: the recorder and its contact measures take them as they take real ones. The
  tactile frames follow the physics' tactile exposures (World.exposures), one thread
  for all pads, shaded in a child process (dexlink.world.tactileproc); the RGB-D camera
  renders in a child process that yields the CPU to the board's interpreter
  (dexlink.world.renderproc, dexlink.world.priority).
"""
from __future__ import annotations

import os

import cv2
import mujoco
import numpy as np

from dexlink.capture.base import Contact
from dexlink.capture.sim import ClockedCamera, FrameClock
from dexlink.capture.tactile import ContactMeter, TactileMeasure
from dexlink.world.exposures import ExposureSource
from dexlink.world.priority import spare_setup_from_collector
from dexlink.world.renderproc import RenderProcess
from dexlink.world.scene import CAMERA_NAME
from dexlink.world.tactileproc import tactile_clock

GEL_SIZE = (320, 240)  # a DIGIT's QVGA
FULL_PRESS_M = 0.0015  # the depth that saturates the brightening (1.5 mm)
SLOPE_BINS = 65  # per axis of the slope lookup
DEPTH_BINS = 256
GEL_BLUR_PX = 9  # the gel spreads an imprint over about this many pixels


class GelShader:
    """Depth per taxel -> a gel image (BGR uint8), Taxim-style lookups built once."""

    def __init__(self, pad_size_m: tuple[float, float], size=GEL_SIZE, seed: int = 0):
        self.width, self.height = size
        self.setup = (tuple(pad_size_m), seed)  # what makes the same shader elsewhere
        self.px_m = 2 * pad_size_m[0] / self.width  # metres per pixel along the finger
        self.background = self._gel(np.random.default_rng(seed))
        self.background.flags.writeable = False
        self._slope_lut, self._slope_max = self._slope_table()
        self._depth_lut = self._depth_table()

    def _gel(self, rng) -> np.ndarray:
        w, h = self.width, self.height
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.empty((h, w, 3), np.float32)
        base[..., 0] = 90 + 60 * xx / w  # blue light from the right
        base[..., 1] = 90 + 60 * yy / h  # green from below
        base[..., 2] = 150 - 60 * xx / w  # red from the left
        base += rng.normal(0, 2, base.shape).astype(np.float32)
        for y in range(h // 12, h, h // 6):  # the printed marker grid
            for x in range(w // 16, w, w // 8):
                cv2.circle(base, (x, y), max(2, w // 80), (30, 30, 30), -1, cv2.LINE_AA)
        return np.clip(base, 0, 255).astype(np.uint8)

    def _slope_table(self):
        """Colour change for a surface slope (dz/dx, dz/dy): three lights at 120 degrees
        around the gel, 35 degrees above it (BGR: blue from the right, green from below,
        red from the left, as the background is lit)."""
        s_max = 1.0
        s = np.linspace(-s_max, s_max, SLOPE_BINS, dtype=np.float32)
        gx, gy = np.meshgrid(s, s)  # [row = gy, col = gx]
        normal = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        elev = np.radians(35)
        lights = [(0.0, (1, 0, 0)), (np.pi / 2, (0, 1, 0)), (np.pi, (0, 0, 1))]
        table = np.zeros(gx.shape + (3,), np.float32)
        for azim, bgr in lights:
            d = np.array([np.cos(azim) * np.cos(elev), np.sin(azim) * np.cos(elev), np.sin(elev)])
            flat = np.sin(elev)
            shade = 160 * (np.clip(normal @ d, 0, None) - flat)
            table += shade[..., None] * np.array(bgr, np.float32)
        return table, s_max

    def _depth_table(self):
        """Brightening with depth: the pressed gel thins, the lights reach it stronger."""
        x = np.linspace(0, 1, DEPTH_BINS, dtype=np.float32)
        return (90 * x ** 0.7)[:, None] * np.ones(3, np.float32)

    def shade(self, depth_m: np.ndarray) -> np.ndarray:
        """The gel image for a (rows, cols) depth grid (m). The shading is worked out at
        twice the taxel resolution and only the change is scaled up to the image (an
        imprint is smooth at that scale): about 0.3 ms a pressed pad."""
        if not depth_m.any():  # read-only, so it can be every untouched frame (no copy)
            return self.background
        rows, cols = depth_m.shape
        d = cv2.resize(depth_m.astype(np.float32), (2 * cols, 2 * rows),
                       interpolation=cv2.INTER_LINEAR)
        px_m = self.px_m * self.width / (2 * cols)  # metres per shading pixel
        d = cv2.GaussianBlur(d, (0, 0), GEL_BLUR_PX * 2 * cols / self.width / 3)
        gx = cv2.Sobel(d, cv2.CV_32F, 1, 0, ksize=3) / (8 * px_m)
        gy = cv2.Sobel(d, cv2.CV_32F, 0, 1, ksize=3) / (8 * px_m)
        scale = (SLOPE_BINS - 1) / (2 * self._slope_max)
        ix = np.clip(((gx + self._slope_max) * scale + 0.5).astype(np.int32), 0, SLOPE_BINS - 1)
        iy = np.clip(((gy + self._slope_max) * scale + 0.5).astype(np.int32), 0, SLOPE_BINS - 1)
        idepth = np.clip((d * ((DEPTH_BINS - 1) / FULL_PRESS_M)).astype(np.int32),
                         0, DEPTH_BINS - 1)
        change = self._slope_lut[iy, ix] + self._depth_lut[idepth]
        # Saturating uint8 arithmetic on the full image: brighter and darker parts apart.
        size = (self.width, self.height)
        up = cv2.resize(np.clip(change, 0, 255).astype(np.uint8), size,
                        interpolation=cv2.INTER_LINEAR)
        down = cv2.resize(np.clip(-change, 0, 255).astype(np.uint8), size,
                          interpolation=cv2.INTER_LINEAR)
        return cv2.subtract(cv2.add(self.background, up), down)


def _gl_context(width, height):
    """An offscreen GL context: EGL unless MUJOCO_GL names another backend."""
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
        return GLContext(width, height)
    return mujoco.GLContext(width, height)


class RGBDRenderer:
    """The world's camera, offscreen. Make and use it in one thread (GL contexts are
    bound to the thread that made them current)."""

    def __init__(self, world, width: int = 640, height: int = 480, camera: str = CAMERA_NAME):
        self.world = world
        m = world.model
        self.width, self.height = width, height
        self._gl = _gl_context(width, height)
        self._gl.make_current()
        self._con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR  # 0 = far: reversed Z
        self._scene = mujoco.MjvScene(m, maxgeom=1000)
        self._opt = mujoco.MjvOption()
        self._pert = mujoco.MjvPerturb()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = m.camera(camera).id
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._rgb = np.empty((height, width, 3), np.uint8)
        self._zbuf = np.empty((height, width), np.float32)
        self._mm = np.empty((height, width), np.float32)
        # The depth buffer is reversed-Z: metric depth = d / (z + c) (as mujoco.Renderer).
        near = np.float32(m.vis.map.znear * m.stat.extent)
        far = np.float32(m.vis.map.zfar * m.stat.extent)
        c = -(far + near) / (far - near)
        d = -(2 * far * near) / (far - near)
        self._c, self._d_mm = np.float32(-0.5 * c - 0.5), np.float32(-0.5 * d * 1000)

    def render(self, color: np.ndarray | None = None,
               depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(colour BGR uint8, depth uint16 mm; 0 = nothing within range) now: into color
        and depth when given (the render process's shared frame), else new arrays."""
        self._gl.make_current()
        with self.world.lock:  # the scene copies what it draws; rendering needs no lock
            mujoco.mjv_updateScene(self.world.model, self.world.data, self._opt, self._pert,
                                   self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._con)
        mujoco.mjr_readPixels(self._rgb, self._zbuf, self._rect, self._con)
        if color is None:
            color = np.empty((self.height, self.width, 3), np.uint8)
            depth = np.empty((self.height, self.width), np.uint16)
        cv2.cvtColor(self._rgb[::-1], cv2.COLOR_RGB2BGR, dst=color)  # GL rows start at the bottom
        z, mm = self._zbuf[::-1], self._mm[::-1]  # float32: 0.01 mm at 5 m, about 1 ms saved
        np.divide(self._d_mm, np.add(z, self._c, out=mm), out=mm)
        np.clip(np.rint(mm, out=mm), 0, 65535, out=mm)
        mm[z <= 0] = 0
        np.copyto(depth, mm, casting="unsafe")
        return color, depth

    def close(self) -> None:
        self._con.free()
        self._gl.free()


class WorldTactileCamera(TactileMeasure, ClockedCamera):
    """A fingertip's gel camera on a World: its pad's depths, shaded, one frame per
    tactile exposure of the world's physics (World.exposures: every 1/60 s of world
    time), stamped with the exposure's time; while the world is not stepped (before the
    hand is powered), a frame of its still state at fps. A world's tactile cameras share
    one FrameClock (capture.sim: one thread) and one TactileProcess (tactileproc: the
    shading and the contact measure off this process's interpreter lock)."""

    def __init__(self, world, finger: str, fps: float = 60, seed: int = 0):
        super().__init__(finger, fps, *GEL_SIZE)
        self.world = world
        self.shader = GelShader(world.pad_half_size(finger), GEL_SIZE, seed)
        self.meter = ContactMeter()
        self.meter.set_reference(self.shader.background)
        self.contact_now = Contact(0.0, 0.0)  # the contact of the frame being delivered
        self.clock, self.source = tactile_clock(world, fps)
        self.source.register(self)

    def _open(self):
        super()._open()
        self.source.open(self.world)  # the child starts here, not on the clock's first tick
        spare_setup_from_collector()  # a full collection would make every camera late

    def _deliver_made(self, made, t_ns: int) -> bool:
        image, self.contact_now = made
        return self._deliver((image, None), t_ns)

    def _measure(self, color):
        return self.contact_now


class WorldRGBDCamera(ClockedCamera):
    """The scene's RGB-D camera on a World, depth in millimetres: a frame of every other
    exposure of the world (30 fps, exposures.ExposureSource: stamped with its world
    time, none lost to a held-up thread), rendered in a child process
    (renderproc.RenderProcess: off this process's interpreter lock, behind the board's
    interpreter for the CPU)."""

    kind = "rgbd"
    depth_scale = 0.001

    def __init__(self, world, fps: float = 30, width: int = 640, height: int = 480,
                 name: str = "rgbd"):
        super().__init__(name, fps, width, height)
        self.world = world
        self._renderer: RenderProcess | None = None
        self.source = RGBDSource(self)
        self.clock = FrameClock(self.source, name="camera-" + name)

    def _open(self):
        super()._open()
        self._renderer = RenderProcess(self.world, self.width, self.height)
        self.source.open(self.world)
        spare_setup_from_collector()

    def _close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class RGBDSource(ExposureSource):
    """An RGB-D camera's frames: each exposure on its schedule, rendered from the state
    the exposure kept."""

    def __init__(self, camera: WorldRGBDCamera):
        super().__init__(camera.fps)
        self.camera = camera

    def make(self, world, exposure, cameras) -> list:
        return [self.camera._renderer.render(None if exposure is None else exposure.state)]
