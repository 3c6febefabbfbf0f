"""Cameras: contact measure, presets, simulated tactile and RGB-D, failures by name."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dexlink.capture import (
    CameraSet,
    ContactMeter,
    Fingertip,
    OpenCVTactileCamera,
    SimRGBDCamera,
    SimTactileCamera,
    default_fingertips,
    fingertips_from_hand,
)
from dexlink.capture.base import Camera
from dexlink.capture.tactile import PRESETS, crop_resize


def collect(cams, seconds):
    frames = []
    lock = threading.Lock()

    def sink(f):
        with lock:
            frames.append(f)
        return True

    cs = CameraSet(cams).start(sink)
    time.sleep(seconds)
    cs.stop()
    return cs, frames


def test_contact_meter_measures_area_and_intensity_of_the_difference():
    m = ContactMeter(threshold=10, reference_frames=2)
    ref = np.full((40, 40, 3), 100, np.uint8)
    assert m.measure(ref).area == 0 and m.measure(ref).area == 0  # reference frames
    assert m.measure(ref).area == 0.0
    pressed = ref.copy()
    pressed[:10, :20] = 160  # a quarter of the width, a quarter of the height: 1/8
    c = m.measure(pressed)
    assert c.area == pytest.approx(200 / 1600)
    assert c.intensity == pytest.approx(60, abs=1)
    m.reset()
    m.measure(pressed), m.measure(pressed)
    assert m.measure(pressed).area == 0.0  # the new reference has the press in it


def test_presets_and_gelsight_crop():
    assert (PRESETS["digit"].width, PRESETS["digit"].height, PRESETS["digit"].fps) == (320, 240, 60)
    assert (PRESETS["digit-vga"].width, PRESETS["digit-vga"].fps) == (640, 30)
    img = np.zeros((480, 640, 3), np.uint8)
    img[:40, :] = 255  # the housing at the edge: cut away by the border
    out = crop_resize(img, PRESETS["gelsight-mini"])
    assert out.shape == (240, 320, 3)
    assert out.max() == 0
    with pytest.raises(ValueError, match="cam0: unknown tactile preset 'digits'"):
        OpenCVTactileCamera("cam0", "/dev/video0", "digits")


def test_fingertips_from_the_hand_file_group_joints_by_finger():
    hand = {"joints": [{"name": "thumb_abd", "finger": "thumb"}, {"name": "thumb_mcp", "finger": "thumb"},
                       {"name": "index_mcp", "finger": "index"}, {"name": "index_pip", "finger": "index"}]}
    assert fingertips_from_hand(hand) == [Fingertip("thumb", (1,)), Fingertip("index", (2, 3))]
    assert [t.joints for t in default_fingertips(8, 4)] == [(0, 1), (2, 3), (4, 5), (6, 7)]


def test_sim_tactile_imprint_grows_and_brightens_with_the_press():
    pos = [0] * 4
    cam = SimTactileCamera(Fingertip("index", (0, 1, 2, 3)), lambda: pos, fps=200)
    presses = []
    for flex in (0, 2999, 3500, 4500, 6000, 9000):
        pos[:] = [flex] * 4
        presses.append(cam.press())
    assert presses[:2] == [0.0, 0.0] and presses == sorted(presses) and presses[-1] == 1.0
    # Through the camera thread and its contact meter (the reference is the untouched
    # gel, even when the finger already presses at start): deeper presses give larger
    # and brighter imprints.
    pos[:] = [0] * 4
    got = {}
    cs = CameraSet([cam]).start(lambda f: got.setdefault(pos[0], []).append(f.contact) or True)
    time.sleep(0.1)
    for flex in (4000, 5000, 6000):
        pos[:] = [flex] * 4
        time.sleep(0.1)
    cs.stop()
    assert got[0][-1].area == 0.0
    pressing = SimTactileCamera(Fingertip("index", (0, 1, 2, 3)), lambda: [6000] * 4)
    assert pressing._measure(pressing._frames[-1]).area > 0.3  # from the very first frame
    last = [got[flex][-1] for flex in (4000, 5000, 6000)]
    assert 0 < last[0].area < last[1].area < last[2].area
    assert last[0].intensity < last[2].intensity


def test_sim_cameras_stamp_at_capture_and_keep_their_rate():
    pos = [0] * 16
    tips = default_fingertips(16)
    cams = [SimTactileCamera(t, lambda: pos, fps=60) for t in tips] + [
        SimRGBDCamera(lambda: pos, tips, fps=30)]
    before = time.monotonic_ns()
    cs, frames = collect(cams, 0.5)
    after = time.monotonic_ns()
    for cam in cams:
        mine = [f for f in frames if f.camera == cam.name]
        assert len(mine) == cam.stats.captured > 0.5 * cam.fps * 0.5
        t = [f.t_ns for f in mine]
        assert t == sorted(t) and before <= t[0] and t[-1] <= after
        assert [f.seq for f in mine] == list(range(len(mine)))
    tactile = [f for f in frames if f.camera == "index"][-1]
    assert tactile.color.shape == (240, 320, 3) and tactile.contact is not None
    rgbd = [f for f in frames if f.camera == "rgbd"][-1]
    assert rgbd.depth.shape == (480, 640) and rgbd.depth.dtype == np.uint16
    assert rgbd.depth_scale == 0.001


def test_sim_rgbd_depth_follows_the_hand_pose():
    pos = [0] * 8
    tips = default_fingertips(8, 4)
    cam = SimRGBDCamera(lambda: pos, tips)
    cam._open()
    _, open_depth = cam._grab()
    pos[:] = [9000] * 8
    _, fist_depth = cam._grab()
    changed = open_depth != fist_depth
    assert changed.mean() > 0.01  # the fingers moved in the depth image
    # A flexed finger's tip is nearer the table: farther from the camera.
    x = int(640 * 0.3)
    assert fist_depth[100, x] > open_depth[100, x]


class ScriptedCamera(Camera):
    """A backend whose device gives `frames` frames, then stalls or disappears."""

    kind = "tactile"

    def __init__(self, name, frames, then):
        super().__init__(name, fps=100, width=8, height=8, stall_s=0.2)
        self.left, self.then = frames, then

    def _open(self):
        pass

    def _grab(self):
        if self.left:
            self.left -= 1
            time.sleep(0.01)
            return np.zeros((8, 8, 3), np.uint8), None
        if self.then == "stall":
            self._stop.wait()
            return None
        return None  # unplugged


def test_failures_are_reported_by_name_and_the_others_go_on():
    pos = [0] * 4
    good = SimTactileCamera(Fingertip("thumb", (0, 1)), lambda: pos, fps=60)
    missing = OpenCVTactileCamera("ghost", "/dev/video97")
    stalled = ScriptedCamera("stuck", 3, "stall")
    gone = ScriptedCamera("unplugged", 3, "gone")
    cs = CameraSet([good, missing, stalled, gone]).start(lambda f: True)
    time.sleep(0.6)
    problems = cs.problems()
    captured = good.stats.captured
    time.sleep(0.2)
    assert good.stats.captured > captured  # still going
    cs.stop()
    assert problems["ghost"].startswith("failed to open: cannot open video device /dev/video97")
    assert problems["stuck"] == "stalled"
    assert problems["unplugged"].startswith("disconnected")
    assert "thumb" not in problems


def test_realsense_without_pyrealsense2_says_how_to_install_it():
    pytest.importorskip("numpy")
    try:
        import pyrealsense2  # noqa: F401
        pytest.skip("pyrealsense2 is installed here")
    except ImportError:
        pass
    from dexlink.capture.realsense import RealSenseCamera
    cs = CameraSet([RealSenseCamera()]).start(lambda f: True)
    cs.wait_running(2)
    cs.stop()
    assert "pip install 'dexlink[realsense]'" in cs.cameras[0].stats.error


def test_a_full_sink_counts_refused_frames():
    cam = SimTactileCamera(Fingertip("thumb", (0,)), lambda: None, fps=100)
    cs = CameraSet([cam]).start(lambda f: False)
    time.sleep(0.2)
    cs.stop()
    assert cam.stats.refused == cam.stats.captured > 0
    assert cam.stats.dropped >= cam.stats.refused
    with pytest.raises(ValueError, match="repeated: thumb"):
        CameraSet([cam, SimTactileCamera(Fingertip("thumb", (0,)), lambda: None)])


def test_opencv_camera_crops_gelsight_frames_measures_contact_and_reports_the_end(tmp_path):
    import cv2
    video = tmp_path / "gelsight.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for i in range(30):
        img = np.full((480, 640, 3), 90, np.uint8)
        img[:30] = 255  # housing edge, cut by the preset's border
        if i >= 15:
            cv2.circle(img, (320, 240), 80, (200, 200, 200), -1)  # a press
        out.write(img)
    out.release()
    cam = OpenCVTactileCamera("index", str(video), "gelsight-mini", stall_s=5)
    frames = []
    cs = CameraSet([cam]).start(lambda f: frames.append(f) or True)
    deadline = time.monotonic() + 10
    while cam.stats.state != "disconnected" and time.monotonic() < deadline:
        time.sleep(0.02)
    cs.stop()
    assert len(frames) == 30 and frames[0].color.shape == (240, 320, 3)
    assert frames[0].color.max() < 120  # the bright edge was cropped away
    assert frames[10].contact.area == 0.0
    pressed = frames[-1].contact
    # The disc covers pi*80^2 of the 458x344 crop (border 1/7 on each side).
    assert pressed.area == pytest.approx(np.pi * 80 ** 2 / (458 * 344), rel=0.1)
    assert pressed.intensity == pytest.approx(110, abs=10)
    assert cs.problems()["index"].startswith("disconnected")


def test_a_late_frame_is_jitter_and_a_skipped_slot_is_a_loss():
    from dexlink.capture.base import CameraStats
    cam = Camera.__new__(Camera)  # only the counting: no device, no thread
    cam.stats = CameraStats()
    period = 10_000_000

    def frames(times_ms):
        for t in times_ms:
            cam._count_missed(int((1000 + t) * 1e6), period)
            cam.stats.captured += 1

    frames([0, 10, 20, 36, 40, 50])  # the fourth 6 ms late, the rest on time
    assert cam.stats.missed == 0
    frames([70, 80, 90])  # the slot at 60 ms never came
    assert cam.stats.missed == 1
    frames([100, 116, 120, 130])  # one late again, then on time: still one lost
    assert cam.stats.missed == 1
