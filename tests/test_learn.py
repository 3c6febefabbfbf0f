"""`dexlink train`: a diffusion policy trained on a dataset made by the real pipeline (a
virtual board recorded, then exported to LeRobot v3.0). Tiny models, few steps."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dexlink.cli import main as cli
from dexlink.learn.observation import (
    ACTION,
    CONTACT,
    STATE,
    History,
    assemble,
    episode_streams,
    frame_times,
    history_times,
)
from dexlink.record.reader import read_episode

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")

FPS = 10
# A policy small enough to train in a fraction of a second per step.
TINY = ["--set", "down_dims=16,32", "--set", "image_hw=24x32", "--set", "crop_hw=20x28",
        "--set", "encoder_channels=8,16", "--set", "keypoints=4", "--set", "image_feature_dim=8",
        "--set", "step_embed_dim=8", "--set", "kernel_size=3", "--batch-size", "4",
        "--warmup", "1"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two short episodes from the virtual board (real firmware, link, simulated cameras),
    exported as LeRobot v3.0: (session directory, dataset directory)."""
    pytest.importorskip("dexlink.sim.flashing")
    from dexlink.record.export import export_lerobot
    from dexlink.record.recording import RecordOptions, record_session

    root = tmp_path_factory.mktemp("learn")
    result = record_session(RecordOptions(task="grasp", out=root / "session", episodes=2,
                                          duration_s=1.5))
    assert result.ok and len(result.kept) == 2
    n, frames, skipped = export_lerobot(root / "session", root / "dataset", fps=FPS)
    assert n == 2 and not skipped and frames > 20
    return root / "session", root / "dataset"


def train(dataset, run, *extra, status=0):
    got = cli(["train", str(dataset), "--out", str(run), *TINY, *extra])
    assert got == status
    return run


def weights(run: Path, step: int | None = None, name: str = "ema.safetensors") -> dict:
    from safetensors.torch import load_file

    folder = run / "checkpoints" / ("last" if step is None else "%07d" % step)
    return load_file(str(folder / name))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- observations: one assembly for export and deployment --------------------------------
def test_assembled_observations_are_the_exported_rows(recorded):
    from dexlink.record.export import align

    session, _ = recorded
    path = sorted(session.glob("episode_*.mcap"))[0]
    exported = align(path, FPS)
    ep = read_episode(path)
    streams, tactile = episode_streams(ep)
    targets = frame_times(streams, FPS)
    rows = assemble(streams, targets, tactile)
    assert len(targets) == len(exported) > 10
    assert np.array_equal(rows[STATE], exported.state)
    assert np.array_equal(rows[ACTION], exported.action)
    assert np.array_equal(rows[CONTACT], exported.contact) and rows[CONTACT].shape[1] == 8
    for key, images in exported.images.items():
        assert rows["observation.images." + key] == images
    assert rows["observation.depth"] == exported.depth

    # The live path: samples arrive one by one; the observation of a moment is the same rows.
    history = History(FPS, 2, tactile)
    i = len(targets) - 2
    t_now = int(targets[i])
    for key, s in streams.items():
        for t, v in zip(s.times, s.values):
            if t <= t_now:
                history.add(key, int(t), v)
    live = history.observation(t_now)
    assert np.array_equal(live[STATE], exported.state[i - 1:i + 1])
    assert np.array_equal(live[CONTACT], exported.contact[i - 1:i + 1])
    assert live["observation.images.rgb"] == exported.images["rgb"][i - 1:i + 1]
    kept, seen = history.streams()[STATE].times, streams[STATE].times
    assert kept[0] <= t_now - 10**9 and len(kept) < (seen <= t_now).sum()  # a bounded window
    # Before the streams start, the first sample stands in (as training pads an episode).
    early = History(FPS, 2)
    early.add_telemetry(1_000_000_000, [100] * 3, [200] * 3)
    assert early.observation(1_000_000_000)[STATE].tolist() == [[1.0] * 3] * 2
    assert list(history_times(10**9, FPS, 3)) == [8 * 10**8, 9 * 10**8, 10**9]


def test_features_come_from_the_dataset():
    """Whatever vectors a dataset has (a wrist pose beside the joints) are used as they come."""
    from dexlink.errors import UserError
    from dexlink.learn.dataset import select_features

    vec = lambda n, names=None: {"dtype": "float32", "shape": [n], "names": names}  # noqa: E731
    video = {"dtype": "video", "shape": [48, 64, 3]}
    features = {"observation.state": vec(16), "observation.wrist": vec(7), "action": vec(16),
                "action.wrist": vec(7, ["x", "y", "z", "qw", "qx", "qy", "qz"]),
                "observation.contact": vec(4), "observation.images.rgb": video,
                "observation.images.tactile_index": video, "timestamp": vec(1),
                "index": {"dtype": "int64", "shape": [1]}}
    spec = select_features(features, ["state", "rgb", "tactile"], "contact", "info.json")
    assert spec.action_keys == ["action", "action.wrist"] and spec.action_dim == 23
    assert spec.action_names[16:] == ["x", "y", "z", "qw", "qx", "qy", "qz"]
    assert spec.state_keys == ["observation.state", "observation.wrist"]
    assert spec.lowdim_keys[-1] == CONTACT and spec.lowdim_dim == 16 + 7 + 4
    assert spec.cameras == ["observation.images.rgb"]
    spec = select_features(features, ["rgb", "tactile"], "images", "info.json")
    assert spec.lowdim_keys == [] and spec.cameras == ["observation.images.rgb",
                                                       "observation.images.tactile_index"]
    del features["observation.contact"]
    with pytest.raises(UserError, match="info.json: --obs tactile --tactile-as contact"):
        select_features(features, ["state", "tactile"], "contact", "info.json")


# --- the network trains ------------------------------------------------------------------
def test_loss_falls_on_a_fixed_batch(recorded):
    from dexlink.learn.config import PolicyConfig, apply_setting
    from dexlink.learn.dataset import LeRobotDataset, dataset_info, select_features
    from dexlink.learn.policy import DiffusionPolicy
    from dexlink.learn.sampler import WindowSampler

    _, dataset = recorded
    config = PolicyConfig()
    for setting in TINY[1::2][:8]:
        apply_setting(config, setting)
    info = dataset_info(dataset)
    config.features = select_features(info["features"], ["state", "rgb", "tactile"], "contact",
                                      "info")
    ds = LeRobotDataset(dataset, config.features, config.image_hw)
    torch.manual_seed(0)
    policy = DiffusionPolicy(config, ds.stat)
    sampler = WindowSampler(ds, config.obs_horizon, config.horizon, config.image_hw,
                            config.crop_hw)
    batch = {k: torch.from_numpy(v) for k, v in sampler.batch(np.arange(0, len(ds), 2)).items()}

    def fixed_loss():  # the same noise and diffusion steps every time
        with torch.no_grad():
            return np.mean([float(policy(batch, torch.Generator().manual_seed(s)))
                            for s in range(6)])

    before = fixed_loss()
    optimiser = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for step in range(60):
        loss = policy(batch, torch.Generator().manual_seed(100 + step))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert fixed_loss() < 0.5 * before


def test_checkpoint_resume_and_seed(recorded, tmp_path):
    _, dataset = recorded
    full = train(dataset, tmp_path / "full", "--steps", "4", "--save-every", "2", "--seed", "3")
    saved = sorted(p.name for p in (full / "checkpoints").iterdir())
    assert saved == ["0000002", "0000004", "last"]
    assert (full / "checkpoints" / "last").resolve().name == "0000004"
    config = json.loads((full / "config.json").read_text())
    assert config["policy"]["obs_horizon"] == 2 and config["policy"]["horizon"] == 16
    assert config["policy"]["n_action_steps"] == 8 and config["train"]["seed"] == 3
    log = [json.loads(line) for line in (full / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and np.isfinite(log[-1]["loss"])

    # Stopped after step 2, resumed: the same steps as the uninterrupted run.
    cut = tmp_path / "cut"
    shutil.copytree(full, cut, symlinks=True)
    shutil.rmtree(cut / "checkpoints" / "0000004")
    (cut / "checkpoints" / "last").unlink()
    (cut / "checkpoints" / "last").symlink_to("0000002")
    assert cli(["train", str(dataset), "--out", str(cut), "--resume"]) == 0
    state = json.loads((cut / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 4
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        assert same(weights(cut, 4, name), weights(full, 4, name)), name
    assert not same(weights(full, 2), weights(full, 4))

    # The same seed again gives the same weights; another seed others.
    again = train(dataset, tmp_path / "again", "--steps", "4", "--save-every", "2", "--seed", "3")
    assert same(weights(again), weights(full))
    other = train(dataset, tmp_path / "other", "--steps", "4", "--seed", "4")
    assert not same(weights(other), weights(full))
    # A run is not overwritten by accident.
    assert cli(["train", str(dataset), "--out", str(full), "--steps", "1"]) == 1


def test_observation_choice_changes_the_inputs(recorded, tmp_path, capsys):
    from dexlink.learn import load_policy

    session, dataset = recorded
    vision = load_policy(train(dataset, tmp_path / "vision", "--steps", "1", "--obs", "state,rgb"))
    touch = load_policy(train(dataset, tmp_path / "touch", "--steps", "1"))
    images = load_policy(train(dataset, tmp_path / "images", "--steps", "1",
                               "--tactile-as", "images"))
    assert vision.config.features.lowdim_keys == [STATE]
    assert touch.config.features.lowdim_keys == [STATE, CONTACT]
    assert vision.config.features.cameras == touch.config.features.cameras == [
        "observation.images.rgb"]
    assert images.config.features.cameras == ["observation.images.rgb"] + [
        "observation.images.tactile_" + f for f in ("index", "middle", "ring", "thumb")]
    assert touch.encoder.out_dim == vision.encoder.out_dim + 2 * 8
    assert images.encoder.out_dim == vision.encoder.out_dim + 2 * 4 * 8
    assert any("tactile_thumb" in k for k in images.state_dict())
    assert not any("tactile" in k for k in touch.state_dict())

    # Deployment's API: a live observation window in, a chunk of 16 joint goals out.
    ep = read_episode(sorted(session.glob("episode_*.mcap"))[0])
    streams, tactile = episode_streams(ep)
    history = History(FPS, 2, tactile)
    for key, s in streams.items():
        for t, v in zip(s.times, s.values):
            if key.startswith("observation.images."):
                v = decode_rgb(v)
            history.add(key, int(t), v)
    obs = history.observation(int(frame_times(streams, FPS)[5]))
    for policy in (vision, touch, images):
        chunk = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(0))
        assert chunk.shape == (16, 16) and np.isfinite(chunk).all()
    assert len(touch.action_names) == 16 and touch.action_names[0] == "thumb_cmc_abd"
    del obs[CONTACT]
    with pytest.raises(KeyError, match="observation.contact"):
        touch.predict_chunk(obs)


def decode_rgb(message: bytes) -> np.ndarray:
    import cv2

    from dexlink.record import schema

    _, data = schema.image_bytes(message)
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)


# --- past one machine --------------------------------------------------------------------
@pytest.mark.slow  # two torch processes start and train: over 10 s
def test_two_processes_hold_the_same_weights(recorded, tmp_path):
    _, dataset = recorded
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "dexlink", "train", str(dataset), "--out", str(run), *TINY, "--steps", "2",
         "--write-rank-digests"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cpu x 2 process(es)" in proc.stdout
    digests = [(run / ("rank-%d.sha256" % r)).read_text() for r in (0, 1)]
    assert digests[0] == digests[1]
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["step"] == 2
    single = train(dataset, tmp_path / "single", "--steps", "2", "--write-rank-digests")
    assert (single / "rank-0.sha256").read_text() != digests[0]  # two ranks saw more frames


# --- user errors -------------------------------------------------------------------------
def test_bad_datasets_are_named_in_one_line(recorded, tmp_path, capsys):
    _, dataset = recorded

    def refused(target, *extra, status=1):
        assert cli(["train", str(target), "--out", str(tmp_path / "run"), *extra]) == status
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    assert "%s: no such dataset directory" % (tmp_path / "nope") in refused(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert str(tmp_path / "empty" / "meta" / "info.json") in refused(tmp_path / "empty")

    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "meta" / "info.json").write_text("{not json")
    assert "%s: unreadable JSON" % (broken / "meta" / "info.json") in refused(broken)
    shutil.copy(dataset / "meta" / "info.json", broken / "meta" / "info.json")
    parquet = broken / "data" / "chunk-000" / "file-000.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])
    assert "%s: unreadable parquet" % parquet in refused(broken)
    shutil.copy(dataset / "data" / "chunk-000" / "file-000.parquet", parquet)
    video = broken / "videos" / "observation.images.rgb" / "chunk-000" / "file-000.mp4"
    video.write_bytes(video.read_bytes()[:300])
    assert str(video) in refused(broken, *TINY, "--obs", "state,rgb")

    assert "--obs touch: choose from state, rgb, tactile" in refused(dataset, "--obs", "touch",
                                                                     status=2)
    assert "crop_hw must fit in image_hw" in refused(dataset, "--set", "crop_hw=100x100",
                                                     status=2)
    assert "no such file" in refused(dataset, "--resume")
