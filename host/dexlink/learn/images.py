"""Camera frames as the image encoders take them: one resize, shared by training and
deployment, then a crop (random in training, centred after)."""
from __future__ import annotations

import cv2
import numpy as np


def fit_image(rgb: np.ndarray, hw) -> np.ndarray:
    """An RGB uint8 frame resized to (height, width) = hw by pixel-area averaging."""
    h, w = int(hw[0]), int(hw[1])
    if rgb.shape[0] == h and rgb.shape[1] == w:
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def centre_offset(hw, crop_hw) -> tuple[int, int]:
    return (int(hw[0]) - int(crop_hw[0])) // 2, (int(hw[1]) - int(crop_hw[1])) // 2


def crop(frames: np.ndarray, offsets: np.ndarray, crop_hw) -> np.ndarray:
    """frames (B, ..., H, W, C), offsets (B, 2) -> (B, ..., ch, cw, C); one crop per sample,
    the same for all its time steps."""
    ch, cw = int(crop_hw[0]), int(crop_hw[1])
    out = np.empty(frames.shape[:-3] + (ch, cw, frames.shape[-1]), frames.dtype)
    for b, (y, x) in enumerate(offsets):
        out[b] = frames[b, ..., y:y + ch, x:x + cw, :]
    return out
