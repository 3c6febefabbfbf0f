"""Export by capture time to LeRobot v3.0 (read and decoded by the real LeRobot loader,
through its own video decoder) and to zarr."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dexlink.cli import main as cli
from dexlink.record.export import align, latest_at_or_before
from dexlink.record.session import Session
from support.record_kit import T0, write_episode

FPS = 20
TACTILE = "observation.images.tactile_index"
RGB = "observation.images.rgb"


def lerobot_dataset(root):
    """The dataset as LeRobot's loader reads it, decoding videos with its default decoder."""
    from ledataset.datasets.lerobot_dataset import LeRobotDataset
    from ledataset.datasets.video_utils import get_safe_default_codec

    assert get_safe_default_codec() == "torchcodec"  # the loader's own, not a stand-in
    return LeRobotDataset("dexlink/test", root=root)


def grey(ds, index: int, key: str) -> tuple[float, tuple]:
    """Mean grey level (0-255) and shape (C, H, W) of a frame as the loader decodes it."""
    img = ds[index][key]
    return float(img.mean()) * 255, tuple(img.shape)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("session")
    s = Session(d, "pick")
    write_episode(s, seconds=1.0, tel_hz=100, tactile=("index", "thumb"))
    write_episode(s, seconds=0.6, tel_hz=100, tactile=("index", "thumb"), task="place",
                  t0=T0 + 10_000_000_000)
    write_episode(s, seconds=0.5, tel_hz=0, tactile=("index", "thumb"))  # broken: no telemetry
    return d


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Cameras of two sizes, as a real rig has: tactile 64x48, RGB 96x72; telemetry at
    every cycle of a 1 kHz loop."""
    d = tmp_path_factory.mktemp("mixed")
    s = Session(d, "pick")
    write_episode(s, seconds=0.8, tel_hz=1000, tactile=("index", "thumb"), rgbd_size=(96, 72))
    return d


def expected(seconds, fps=FPS, tel_hz=100):
    """What write_episode's streams give at each target time (see support/record_kit.py)."""
    start = 2000  # the latest first sample: the RGB-D camera's, 2 us after T0
    ends = [(int(seconds * tel_hz) - 1) * 1_000_000_000 // tel_hz,
            (int(seconds * 60) - 1) * 1_000_000_000 // 60 + 1000,
            (int(seconds * 30) - 1) * 1_000_000_000 // 30 + 2000]
    n = int((min(ends) - start) // (1e9 / fps)) + 1
    targets = start + np.round(np.arange(n) * 1e9 / fps).astype(np.int64)
    cycle = targets // (1_000_000_000 // tel_hz)
    tactile_i = latest_at_or_before(np.arange(int(seconds * 60)) * 1_000_000_000 // 60 + 1000,
                                    targets)
    return n, cycle, tactile_i


def export(session, out, *options, status=0):
    got = cli(["export", str(session), "--format", "lerobot", "--fps", str(FPS),
               "--out", str(out), *options])
    assert got == status
    return out


def snapshot(root):
    """Every data and video file of a dataset: its bytes' hash and modification time."""
    return {p.relative_to(root): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for folder in ("data", "videos") for p in sorted((root / folder).rglob("*"))
            if p.is_file()}


def test_latest_sample_at_or_before_each_target():
    times = np.array([0, 10, 20, 30])
    assert list(latest_at_or_before(times, np.array([0, 5, 10, 29, 30, 99]))) == [0, 0, 1, 2, 3, 3]


def test_align_uses_capture_times(session):
    ep = align(session / "episode_0000.mcap", FPS)
    n, cycle, tactile_i = expected(1.0)
    assert len(ep) == n
    assert np.allclose(ep.state[:, 1], (10 * cycle + 1 + 2) / 100)  # present, in degrees
    assert np.allclose(ep.action[:, 1], (10 * cycle + 1 + 1) / 100)  # goal
    assert np.allclose(ep.contact[:, 0], tactile_i / 1000)  # index camera's contact area
    assert np.allclose(ep.t_s, np.arange(n) / FPS)
    grey_ = [int(ep.decode("tactile_index", k).mean()) for k in range(n)]
    assert all(abs(g - (7 * i) % 256) <= 3 for g, i in zip(grey_, tactile_i))


def test_align_picks_the_cycle_of_each_frame_from_every_cycle_telemetry(mixed):
    ep = align(mixed / "episode_0000.mcap", FPS)
    n, cycle, _ = expected(0.8, tel_hz=1000)
    assert len(ep) == n and n > 10
    assert np.allclose(ep.state, (10 * cycle[:, None] + np.arange(4) + 2) / 100)
    assert np.allclose(ep.action, (10 * cycle[:, None] + np.arange(4) + 1) / 100)


def test_lerobot_export_loads_with_the_lerobot_loader(session, tmp_path, capsys):
    out = export(session, tmp_path / "lerobot")
    said = capsys.readouterr().out
    assert "skipped %s: it has no telemetry" % (session / "episode_0002.mcap") in said
    n0, cycle0, tactile0 = expected(1.0)
    n1, _, tactile1 = expected(0.6)
    assert "exported 2 episodes, %d frames" % (n0 + n1) in said

    ds = lerobot_dataset(out)
    assert ds.num_episodes == 2 and len(ds) == ds.num_frames == n0 + n1
    assert ds.meta.total_frames == n0 + n1 and ds.fps == FPS
    assert sorted(ds.meta.video_keys) == [RGB, TACTILE, "observation.images.tactile_thumb"]
    assert list(ds.meta.tasks.index) == ["test task", "place"]
    row = ds.hf_dataset[n0 + 3]
    assert int(row["episode_index"]) == 1 and int(row["frame_index"]) == 3
    assert int(row["task_index"]) == 1
    assert float(row["timestamp"]) == pytest.approx(3 / FPS)
    row = ds.hf_dataset[5]
    assert row["observation.state"].tolist() == pytest.approx(
        [(10 * cycle0[5] + j + 2) / 100 for j in range(4)])
    assert row["action"].tolist() == pytest.approx(
        [(10 * cycle0[5] + j + 1) / 100 for j in range(4)])

    # The videos, decoded by the loader at the timestamps it asks for: one video frame per
    # dataset frame, both episodes in one file (far below the size limit).
    from torchcodec.decoders import VideoDecoder
    ep1 = ds.meta.episodes[1]
    assert ep1["videos/%s/from_timestamp" % TACTILE] == pytest.approx(n0 / FPS)
    assert VideoDecoder(str(ds.root / ds.meta.get_video_file_path(0, TACTILE))).metadata \
        .num_frames == n0 + n1
    for k, i in enumerate(tactile0):
        level, shape = grey(ds, k, TACTILE)
        assert shape == (3, 48, 64) and abs(level - (7 * i) % 256) <= 6, (k, level, i)
    for k in (0, 4, n1 - 1):
        level, _ = grey(ds, n0 + k, TACTILE)
        assert abs(level - (7 * tactile1[k]) % 256) <= 6


def test_default_export_gives_every_camera_the_smallest_ones_shape(mixed, tmp_path):
    """LeRobot's diffusion policy wants one image shape: the default makes it so."""
    ds = lerobot_dataset(export(mixed, tmp_path / "default"))
    shapes = {tuple(ds.meta.features[k]["shape"]) for k in ds.meta.video_keys}
    assert shapes == {(48, 64, 3)}
    n, _, _ = expected(0.8, tel_hz=1000)
    rgb_times = np.arange(24) * 1_000_000_000 // 30 + 2000
    targets = 2000 + np.round(np.arange(n) * 1e9 / FPS).astype(np.int64)
    rgb_i = latest_at_or_before(rgb_times, targets)
    for k in (0, n // 2, n - 1):  # the RGB camera, shrunk from 96x72, still shows its frame
        level, shape = grey(ds, k, RGB)
        assert shape == (3, 48, 64) and abs(level - (7 * rgb_i[k]) % 256) <= 6

    native = lerobot_dataset(export(mixed, tmp_path / "native", "--image-size", "native"))
    assert tuple(native.meta.features[RGB]["shape"]) == (72, 96, 3)
    assert tuple(native.meta.features[TACTILE]["shape"]) == (48, 64, 3)
    assert grey(native, 0, RGB)[1] == (3, 72, 96)


def test_image_size_and_cameras_choose_what_is_exported(mixed, tmp_path):
    out = export(mixed, tmp_path / "small", "--image-size", "32x24", "--cameras", "rgbd,index")
    ds = lerobot_dataset(out)
    assert sorted(ds.meta.video_keys) == [RGB, TACTILE]
    assert {tuple(ds.meta.features[k]["shape"]) for k in ds.meta.video_keys} == {(24, 32, 3)}
    assert grey(ds, 3, TACTILE)[1] == (3, 24, 32)
    assert not (out / "videos" / "observation.images.tactile_thumb").exists()
    # Contact is kept for every tactile camera, its images chosen or not.
    assert ds.meta.features["observation.contact"]["names"] == [
        "index_area", "index_intensity", "thumb_area", "thumb_intensity"]


def test_data_and_video_files_are_split_by_size(session, tmp_path):
    out = export(session, tmp_path / "split", "--data-file-mb", "0.0001", "--video-file-mb",
                 "0.0001")
    info = json.loads((out / "meta/info.json").read_text())
    assert info["data_files_size_in_mb"] == 0.0001 and info["video_files_size_in_mb"] == 0.0001
    assert sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*.parquet")) == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet"]
    assert sorted(p.name for p in (out / "videos" / TACTILE / "chunk-000").iterdir()) == [
        "file-000.mp4", "file-001.mp4"]
    ds = lerobot_dataset(out)
    n0, _, _ = expected(1.0)
    n1, _, tactile1 = expected(0.6)
    ep1 = ds.meta.episodes[1]
    assert ep1["data/file_index"] == 1 and ep1["videos/%s/file_index" % TACTILE] == 1
    assert ep1["videos/%s/from_timestamp" % TACTILE] == 0  # the start of its own file
    assert len(ds) == n0 + n1
    for k in (0, n1 - 1):
        level, _ = grey(ds, n0 + k, TACTILE)
        assert abs(level - (7 * tactile1[k]) % 256) <= 6


def test_append_adds_episodes_without_rewriting_the_dataset(session, tmp_path, capsys):
    out = export(session, tmp_path / "grow")
    before = snapshot(out)
    more = tmp_path / "more"
    write_episode(Session(more, "stack"), seconds=0.7, tel_hz=1000, tactile=("index", "thumb"),
                  task="stack", t0=T0 + 50_000_000_000)
    export(more, out, "--append")
    assert "appended 1 episodes" in capsys.readouterr().out
    after = snapshot(out)
    assert {k: after[k] for k in before} == before  # not a byte or a time changed
    assert sorted(set(after) - set(before), key=str) == sorted(
        [p.relative_to(out) for p in (out / "data/chunk-000/file-001.parquet",
                                      *[out / "videos" / k / "chunk-000/file-001.mp4" for k in
                                        (RGB, TACTILE, "observation.images.tactile_thumb")])],
        key=str)
    assert (out / "meta/episodes/chunk-000/file-001.parquet").exists()

    n0, _, _ = expected(1.0)
    n1, _, _ = expected(0.6)
    n2, cycle2, tactile2 = expected(0.7, tel_hz=1000)
    ds = lerobot_dataset(out)
    assert ds.num_episodes == 3 and len(ds) == n0 + n1 + n2
    assert list(ds.meta.tasks.index) == ["test task", "place", "stack"]
    row = ds.hf_dataset[n0 + n1 + 2]
    assert (int(row["index"]), int(row["episode_index"]), int(row["frame_index"]),
            int(row["task_index"])) == (n0 + n1 + 2, 2, 2, 2)
    assert row["observation.state"].tolist() == pytest.approx(
        [(10 * cycle2[2] + j + 2) / 100 for j in range(4)])
    level, _ = grey(ds, n0 + n1 + 2, TACTILE)
    assert abs(level - (7 * tactile2[2]) % 256) <= 6
    stats = json.loads((out / "meta/stats.json").read_text())
    assert stats["index"]["count"] == [n0 + n1 + n2]
    assert stats["index"]["max"] == [n0 + n1 + n2 - 1] and stats["index"]["min"] == [0]


def test_append_refuses_episodes_that_do_not_fit(session, tmp_path, capsys):
    out = export(session, tmp_path / "fixed")
    before = snapshot(out)
    capsys.readouterr()
    assert cli(["export", str(session), "--fps", "10", "--out", str(out), "--append"]) == 1
    assert "meta/info.json: fps is 20; these episodes would be at 10" in capsys.readouterr().err
    export(session, out, "--append", "--image-size", "32x24", status=1)
    err = capsys.readouterr().err
    assert "feature observation.images.rgb is [48, 64, 3]" in err and "[24, 32, 3]" in err
    assert snapshot(out) == before  # nothing left behind by the refusals
    assert lerobot_dataset(out).num_episodes == 2


def test_bad_export_options_are_refused(session, tmp_path, capsys):
    for options, words in ((["--image-size", "big"], "--image-size 'big': expected WIDTHxHEIGHT"),
                           (["--image-size", "33x24"], "must be even"),
                           (["--cameras", ","], "--cameras: name at least one camera"),
                           (["--format", "zarr", "--append"], "--append: only for --format lerobot")):
        assert cli(["export", str(session), "--out", str(tmp_path / "o"), *options]) == 2
        assert words in capsys.readouterr().err
    assert cli(["export", str(session), "--out", str(tmp_path / "o"), "--cameras", "pinky"]) == 1
    assert "it has no camera tactile_pinky" in capsys.readouterr().out


def test_zarr_export_reads_back(session, tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "replay.zarr"
    assert cli(["export", str(session), "--format", "zarr", "--fps", str(FPS),
                "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().out
    n0, cycle0, _ = expected(1.0)
    n1, _, _ = expected(0.6)
    root = zarr.open_group(str(out), mode="r")
    assert list(root["meta/episode_ends"][:]) == [n0, n0 + n1]
    assert root["data/state"].shape == (n0 + n1, 4)
    assert np.allclose(root["data/action"][:n0, 0], (10 * cycle0 + 1) / 100)
    assert root["data/img_tactile_thumb"].shape == (n0 + n1, 48, 64, 3)
    assert root["data/depth"].dtype == np.uint16
    assert root["data/depth"][n0 + 2].min() >= 500  # depth stays in millimetres, lossless


def test_export_with_nothing_usable_fails_clearly(tmp_path, capsys):
    s = Session(tmp_path / "s", "pick")
    write_episode(s, seconds=0.3, tel_hz=0)
    assert cli(["export", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "it has no telemetry" in captured.out and "no episode could be exported" in captured.err


def test_export_leaves_out_samples_without_a_read_back_present(tmp_path):
    from dexlink.record.episode import EpisodeWriter
    from dexlink.record.export import align
    from dexproto import catalog as C
    from dexproto.stream import make

    s = Session(tmp_path, "t")
    path = s.next_path()
    w = EpisodeWriter(path, {"task": "t", "dexlink_version": "test"}, [])
    t0 = 5_000_000_000
    for c in range(100):  # 100 Hz: joint 1 not read back for 30 cycles; joint 2 never (PWM)
        items = [(100 + c, 200 + c, 300 + c, 0),
                 (100 + c, 200 + c, C.PRESENT_UNKNOWN if c < 30 else 300 + c,
                  C.ST_SERVO_TIMEOUT if c < 30 else 0),
                 (100 + c, 200 + c, C.PRESENT_UNKNOWN, 0)]
        w.add_telemetry(make("TELEMETRY", cycle=c, board_us=c * 10000, cycle_us=250,
                             worst_cycle_us=400, overruns=0, mode=1, items=items),
                        t0 + c * 10_000_000)
    w.finish({"mark": "", "duration_s": 1.0})
    ep = align(path, 50)
    assert ep.state.min() > -300  # no -327.68 placeholder anywhere
    assert abs(ep.state[0, 1] - 3.30) < 1e-4  # the first frame is the first read-back (cycle 30)
    assert len(ep) == 35  # cycles 30..98 at 50 fps
    assert abs(ep.state[0, 2] - ep.action[0, 2]) < 1e-6  # no read-back at all: the goal
