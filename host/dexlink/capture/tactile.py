"""Visuotactile fingertip cameras (DIGIT, GelSight Mini) read through OpenCV / V4L2.

Both are UVC cameras looking at a lit gel. Contact shows as a change from a reference
frame taken with nothing touching, so each camera keeps that reference and measures, on
every frame, the area and the intensity of the difference.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from dexlink.capture.base import Camera, Contact


@dataclass(frozen=True)
class Preset:
    """How to open a sensor and what to make of its image."""

    width: int  # capture mode asked of the camera
    height: int
    fps: float
    out_width: int  # size of the recorded image
    out_height: int
    border: float = 0.0  # fraction cut from each side before resizing (GelSight Mini)


PRESETS = {
    # DIGIT: QVGA at 60 fps or VGA at 30 fps, recorded as captured.
    "digit": Preset(320, 240, 60, 320, 240),
    "digit-vga": Preset(640, 480, 30, 640, 480),
    # GelSight Mini: the gel does not fill the frame; cut the border, resize to 320x240.
    "gelsight-mini": Preset(640, 480, 25, 320, 240, border=1 / 7),
}


class ContactMeter:
    """Area and intensity of the difference between a frame and the no-contact reference.

    The reference is the mean of the first `reference_frames` frames; a pixel counts as
    in contact when its grey level moved by more than `threshold`.
    """

    def __init__(self, threshold: int = 12, reference_frames: int = 4):
        self.threshold = threshold
        self.reference_frames = reference_frames
        self._sum: np.ndarray | None = None
        self._seen = 0
        self.reference: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    def reset(self) -> None:
        """Take a new reference from the next frames (nothing must touch the gel)."""
        self._sum, self._seen, self.reference = None, 0, None

    def set_reference(self, color: np.ndarray) -> None:
        """Use this frame as the no-contact reference."""
        self.reference = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY) if color.ndim == 3 else color.copy()

    def measure(self, color: np.ndarray) -> Contact:
        grey = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY) if color.ndim == 3 else color
        if self.reference is None:
            self._accumulate(grey)
            return Contact(0.0, 0.0)
        if self._diff is None or self._diff.shape != grey.shape:
            self._diff = np.empty_like(grey)
            self._mask = np.empty_like(grey)
        cv2.absdiff(grey, self.reference, dst=self._diff)
        cv2.threshold(self._diff, self.threshold, 255, cv2.THRESH_BINARY, dst=self._mask)
        n = cv2.countNonZero(self._mask)
        if n == 0:
            return Contact(0.0, 0.0)
        intensity = cv2.mean(self._diff, mask=self._mask)[0]
        return Contact(n / grey.size, float(intensity))

    def _accumulate(self, grey: np.ndarray) -> None:
        if self._sum is None:
            self._sum = np.zeros(grey.shape, np.float32)
        self._sum += grey
        self._seen += 1
        if self._seen >= self.reference_frames:
            self.reference = np.clip(self._sum / self._seen + 0.5, 0, 255).astype(np.uint8)


def crop_resize(image: np.ndarray, preset: Preset) -> np.ndarray:
    """Cut the preset's border and resize to its output size (no-op when they match)."""
    h, w = image.shape[:2]
    if preset.border:
        by, bx = int(h * preset.border), int(w * preset.border)
        image = image[by:h - by, bx:w - bx]
        h, w = image.shape[:2]
    if (w, h) != (preset.out_width, preset.out_height):
        image = cv2.resize(image, (preset.out_width, preset.out_height),
                           interpolation=cv2.INTER_AREA)
    return image


class TactileMeasure:
    """Mixin: tactile cameras measure contact on every frame."""

    kind = "tactile"

    def _measure(self, color):
        return self.meter.measure(color)


class OpenCVTactileCamera(TactileMeasure, Camera):
    """A DIGIT or GelSight Mini (or any UVC tactile sensor) through OpenCV's V4L2 backend.

    `device` is a /dev/video path or an index; a video file also works (OpenCV's file
    backend), to replay a sensor's recording as a camera.
    """

    def __init__(self, name: str, device, preset: str = "digit", stall_s: float = 1.0):
        if preset not in PRESETS:
            raise ValueError("camera %s: unknown tactile preset %r (known: %s)"
                             % (name, preset, ", ".join(PRESETS)))
        self.preset = PRESETS[preset]
        super().__init__(name, self.preset.fps, self.preset.out_width, self.preset.out_height,
                         stall_s)
        self.device = device
        self.meter = ContactMeter()
        self._cap = None

    def _open(self):
        dev = int(self.device) if str(self.device).isdigit() else str(self.device)
        is_file = isinstance(dev, str) and os.path.isfile(dev)
        cap = cv2.VideoCapture(dev, cv2.CAP_ANY if is_file else cv2.CAP_V4L2)
        if not cap.isOpened():
            raise OSError("cannot open video %s %s" % ("file" if is_file else "device", self.device))
        p = self.preset
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, p.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, p.height)
        cap.set(cv2.CAP_PROP_FPS, p.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the freshest frame, not a stale queue
        self._cap = cap

    def _grab(self):
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        return crop_resize(image, self.preset), None

    def _close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None
