"""Cameras: one interface (Camera), real backends and simulated ones.

Every camera runs in its own thread and stamps frames with host time.monotonic_ns() at
capture. See base.py for the interface, tactile.py (DIGIT, GelSight Mini),
realsense.py (RGB-D, optional pyrealsense2), sim.py (rendered from joint angles).
"""
from dexlink.capture.base import Camera, CameraSet, Contact, Frame
from dexlink.capture.sim import (
    Fingertip,
    SimRGBDCamera,
    SimTactileCamera,
    default_fingertips,
    fingertips_from_hand,
)
from dexlink.capture.tactile import PRESETS, ContactMeter, OpenCVTactileCamera


def sim_cameras(joints, fingertips, tactile_fps=60, rgbd_fps=30, rgbd=True) -> CameraSet:
    """One simulated tactile camera per fingertip, plus a simulated RGB-D camera."""
    cams = [SimTactileCamera(tip, joints, fps=tactile_fps, seed=i)
            for i, tip in enumerate(fingertips)]
    if rgbd:
        cams.append(SimRGBDCamera(joints, fingertips, fps=rgbd_fps))
    return CameraSet(cams)


__all__ = ["Camera", "CameraSet", "Contact", "Frame", "Fingertip", "SimRGBDCamera",
           "SimTactileCamera", "default_fingertips", "fingertips_from_hand", "PRESETS", "ContactMeter",
           "OpenCVTactileCamera", "sim_cameras"]
