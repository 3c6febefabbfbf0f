"""Export by capture time to LeRobot v3.0 (checked with the real loader) and to zarr."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from dexlink.cli import main as cli
from dexlink.record.export import align, latest_at_or_before
from dexlink.record.session import Session
from test_record_kit import T0, write_episode

FPS = 20


def import_lerobot_dataset():
    """ledataset's LeRobotDataset.

    The PyPI torchvision wheel is built against CUDA torch; with the CPU torch used here
    its C operators do not load and its fake-op registrations fail on import. The loader
    needs torchvision only for imports (and video decoding, checked below with PyAV), so
    the two operator schemas are declared first when they are missing.
    """
    torch = pytest.importorskip("torch")
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_lerobot_dataset.keep = lib
        import torchvision  # noqa: F401
    from ledataset.datasets.lerobot_dataset import LeRobotDataset
    return LeRobotDataset


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("session")
    s = Session(d, "pick")
    write_episode(s, seconds=1.0, tel_hz=100, tactile=("index", "thumb"))
    write_episode(s, seconds=0.6, tel_hz=100, tactile=("index", "thumb"), task="place",
                  t0=T0 + 10_000_000_000)
    write_episode(s, seconds=0.5, tel_hz=0, tactile=("index", "thumb"))  # broken: no telemetry
    return d


def expected(seconds, fps=FPS):
    """What write_episode's streams give at each target time (see test_record_kit)."""
    start = 2000  # the latest first sample: the RGB-D camera's, 2 us after T0
    ends = [(int(seconds * 100) - 1) * 10_000_000, (int(seconds * 60) - 1) * 1_000_000_000 // 60 + 1000,
            (int(seconds * 30) - 1) * 1_000_000_000 // 30 + 2000]
    n = int((min(ends) - start) // (1e9 / fps)) + 1
    targets = start + np.round(np.arange(n) * 1e9 / fps).astype(np.int64)
    cycle = targets // 10_000_000
    tactile_i = latest_at_or_before(np.arange(int(seconds * 60)) * 1_000_000_000 // 60 + 1000,
                                    targets)
    return n, cycle, tactile_i


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
    grey = [int(ep.decode("tactile_index", k).mean()) for k in range(n)]
    assert all(abs(g - (7 * i) % 256) <= 3 for g, i in zip(grey, tactile_i))


def test_lerobot_export_loads_with_the_lerobot_loader(session, tmp_path, capsys):
    out = tmp_path / "lerobot"
    assert cli(["export", str(session), "--format", "lerobot", "--fps", str(FPS),
                "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "skipped %s: it has no telemetry" % (session / "episode_0002.mcap") in said
    n0, cycle0, tactile0 = expected(1.0)
    n1, _, _ = expected(0.6)
    assert "exported 2 episodes, %d frames" % (n0 + n1) in said

    LeRobotDataset = import_lerobot_dataset()
    ds = LeRobotDataset("dexlink/test", root=out, video_backend="pyav")
    assert ds.num_episodes == 2 and len(ds) == ds.num_frames == n0 + n1
    assert ds.meta.total_frames == n0 + n1 and ds.fps == FPS
    assert sorted(ds.meta.video_keys) == ["observation.images.rgb",
                                          "observation.images.tactile_index",
                                          "observation.images.tactile_thumb"]
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

    # The videos: one frame per dataset frame, at the timestamps the loader will ask for.
    import av
    key = "observation.images.tactile_index"
    ep1 = ds.meta.episodes[1]
    assert ep1["videos/%s/from_timestamp" % key] == pytest.approx(n0 / FPS)
    with av.open(str(ds.root / ds.meta.get_video_file_path(0, key))) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == n0 + n1
    assert frames[0].shape == (48, 64, 3)
    assert all(abs(int(frames[k].mean()) - (7 * i) % 256) <= 6 for k, i in enumerate(tactile0))


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
