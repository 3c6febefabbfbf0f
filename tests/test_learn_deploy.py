"""`dexlink run-policy` and `dexlink eval`: a tiny policy trained on a world episode (the
real pipeline: virtual board in the physics world, recorded, exported), deployed on the
virtual board in the world, evaluated; the live observation path against the dataset."""
from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from dexlink.cli import main as cli
from dexlink.learn.deploy import (
    ActionPlan,
    ActionRefused,
    LiveObservations,
    check_finite,
    resample,
)
from dexlink.learn.evaluate import wilson
from dexlink.learn.observation import CONTACT, STATE, History, episode_streams, frame_times
from dexlink.record import schema
from dexlink.record.reader import read_episode

FPS = 10
TINY = ["--set", "down_dims=16,32", "--set", "image_hw=24x32", "--set", "crop_hw=20x28",
        "--set", "encoder_channels=8,16", "--set", "keypoints=4", "--set", "image_feature_dim=8",
        "--set", "step_embed_dim=8", "--set", "kernel_size=3", "--set", "inference_steps=3",
        "--batch-size", "4", "--warmup", "1", "--threads", "1"]


# --- the parts on their own ----------------------------------------------------------------
def test_a_nan_or_infinite_action_is_refused_by_name():
    chunk = np.zeros((4, 3))
    check_finite(chunk, ["a", "b", "c"])
    chunk[2, 1] = np.nan
    with pytest.raises(ActionRefused, match=r"nan action \(b, step 2"):
        check_finite(chunk, ["a", "b", "c"])
    chunk[2, 1] = -np.inf
    with pytest.raises(ActionRefused, match="-inf"):
        check_finite(chunk, ["a", "b", "c"])


def test_a_new_chunk_replaces_the_plan_from_its_first_point():
    plan = ActionPlan()
    assert plan.at(0) is None
    plan.replace(np.array([0, 100, 200]), np.array([[0.0], [10.0], [20.0]]))
    assert plan.at(50)[0] == pytest.approx(5.0)
    assert plan.at(50, interpolate=False)[0] == 0.0  # stepwise: the last point reached
    assert plan.at(500)[0] == 20.0  # after the end: held
    plan.replace(np.array([150, 250]), np.array([[40.0], [50.0]]))
    assert list(plan.times) == [0, 100, 150, 250]  # 200 was replaced
    assert plan.at(125)[0] == pytest.approx(25.0)
    times, goals = resample(np.array([0, 100_000_000]), np.array([[0.0], [10.0]]), 50_000_000)
    assert list(times) == [0, 50_000_000, 100_000_000] and list(goals[:, 0]) == [0, 5, 10]
    # A recording's uneven points (a 700 ms gap) become even ones, no more than a board queues.
    uneven = np.array([0, 10, 20, 720, 730]) * 1_000_000
    times, goals = resample(uneven, uneven[:, None] / 1e6, 50_000_000)
    assert len(set(np.diff(times))) <= 2 and times[-1] == uneven[-1] and len(times) <= 31
    assert np.allclose(goals[:, 0], times / 1e6)


def test_live_observations_hold_what_the_policy_observes():
    """A vision-only policy needs no contact stream; one with touch waits for every camera's."""
    from dexlink.capture.base import Contact, Frame
    from dexlink.learn.config import FeatureSpec, PolicyConfig

    def config(contact):
        spec = FeatureSpec(["observation.state"], [2], CONTACT if contact else None,
                           2 if contact else 0, ["observation.images.rgb"], ["action"], [2])
        return PolicyConfig(fps=10.0, features=spec)

    class Telemetry:
        def column(self, name):
            return [100, 200] if name == "present_cdeg" else [150, 250]

    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255  # blue in the camera's BGR
    for contact in (False, True):
        live = LiveObservations(config(contact), ["index"])
        live.telemetry(Telemetry(), 1_000_000_000)
        live.frame(Frame("rgbd", 0, 1_000_000_000, image), "rgbd")
        assert live.ready() is not contact
        live.frame(Frame("index", 0, 1_000_000_000, image, contact=Contact(0.5, 9.0)), "tactile")
        assert live.ready()
        obs = live.observation(1_050_000_000)
        assert obs[STATE].tolist() == [[1.0, 2.0]] * 2
        assert obs["observation.images.rgb"][0][0, 0].tolist() == [0, 0, 255]  # RGB now
        assert (CONTACT in obs) is contact and "action" not in obs
        if contact:
            assert obs[CONTACT].tolist() == [[0.5, 9.0]] * 2


def test_wilson_intervals_match_the_formula():
    # Known values of the Wilson score interval at z = 1.96: 0/2 -> [0, z^2/(2+z^2)],
    # 5/10 -> 0.5 -/+ 0.2634 (Brown, Cai & DasGupta 2001), 10/10 -> [0.7225, 1].
    z = 1.959963984540054
    assert wilson(0, 2) == (0.0, pytest.approx(z * z / (2 + z * z)))
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


# --- on the virtual board in a world -------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A world episode recorded as learn-demo records its demonstrations, exported at 10 fps
    (RGB and the contact measures), and a tiny policy trained on it for a few steps."""
    pytest.importorskip("dexlink.sim.flashing")
    pytest.importorskip("mujoco")
    from dexlink.learn.evaluate_demo import record_demonstration
    from dexlink.sim.worldbridge import WorldOptions

    root = tmp_path_factory.mktemp("deploy")
    assert record_demonstration(root / "demo", WorldOptions("lift_cube", 1, 0.9))["file"]
    assert cli(["export", str(root / "demo"), "--fps", str(FPS), "--cameras", "rgb",
                "--image-size", "64x48", "--out", str(root / "dataset")]) == 0
    assert cli(["train", str(root / "dataset"), "--out", str(root / "run"), "--steps", "3",
                *TINY]) == 0
    return root


@pytest.mark.vboard
@pytest.mark.micropython
def test_the_live_path_gives_the_dataset_rows(trained):
    """A recorded episode's samples fed one by one into the live History, in capture order:
    the observation of each frame's moment is that frame's dataset row (and the one before)."""
    import pyarrow.parquet as pq

    from dexlink.record.export import align

    path = sorted((trained / "demo").glob("episode_*.mcap"))[0]
    table = pq.read_table(sorted((trained / "dataset" / "data").rglob("*.parquet"))[0])
    rows = {k: np.array(table.column(k).to_pylist(), np.float32) for k in (STATE, CONTACT)}
    exported = align(path, FPS, cameras=["rgb"], depth=False)
    ep = read_episode(path)
    streams, tactile = episode_streams(ep)
    kept = {k: s for k, s in streams.items() if not k.startswith("observation.images.tactile")
            and k != "observation.depth"}  # what the export above used
    targets = frame_times(kept, FPS)
    assert len(targets) == len(rows[STATE]) == len(exported) > 10

    tel = ep.telemetry()
    samples = [(int(t), "tel", i) for i, t in enumerate(tel["t_ns"])]
    for cam in tactile:
        c = ep.contact(cam)
        samples += [(int(t), cam, i) for i, t in enumerate(c["t_ns"])]
    rgb = kept["observation.images.rgb"]
    samples += [(int(t), "rgb", i) for i, t in enumerate(rgb.times)]
    samples.sort(key=lambda s: s[0])
    history = History(FPS, 2, tactile)
    contact = {cam: ep.contact(cam) for cam in tactile}
    k, checked = 0, 0
    for t, what, i in samples + [(2**62, "end", 0)]:
        while k < len(targets) and t > targets[k]:  # every sample up to this frame is in
            live = history.observation(int(targets[k]))
            # The first frame's predecessor is before the dataset's first row (live, the
            # streams that started earlier have one): from the second frame on, both rows.
            frames = [k - 1, k] if k else [0]
            assert np.array_equal(live[STATE][-len(frames):], rows[STATE][frames]), k
            assert np.array_equal(live[CONTACT][-len(frames):], rows[CONTACT][frames]), k
            assert (live["observation.images.rgb"][-len(frames):]
                    == [exported.images["rgb"][j] for j in frames]), k
            k, checked = k + 1, checked + 1
        if what == "tel":
            history.add_telemetry(t, tel["present_cdeg"][i], tel["goal_cdeg"][i])
        elif what == "rgb":
            history.add("observation.images.rgb", t, rgb.values[i])
        elif what != "end":
            history.add_contact(what, t, contact[what]["area"][i], contact[what]["intensity"][i])
    assert checked == len(targets)


@pytest.mark.vboard
@pytest.mark.micropython
def test_run_policy_drives_the_hand_in_the_world_and_records_it(trained, capsys):
    out = trained / "policy"
    assert cli(["run-policy", str(trained / "run"), "--sim", "--world", "lift_cube",
                "--world-seed", "4", "--max-seconds", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "chunks" in said
    [path] = sorted(out.glob("episode_*.mcap"))
    ep = read_episode(path)
    assert ep.complete
    tel = ep.telemetry()
    host = tel["mode"] == "HOST"
    assert host.sum() > 200  # the policy's episode ran in HOST mode, telemetry every cycle
    goals = tel["goal_cdeg"][host]
    assert np.abs(goals - goals[0]).max() > 100  # the policy moved the hand (> 1 degree)
    assert len(ep.streams["/rgbd/color"]) > 10
    assert cli(["inspect", str(path)]) == 0


@pytest.mark.vboard
@pytest.mark.micropython
@pytest.mark.slow  # four virtual boards in worlds, one per episode
def test_eval_writes_results_with_wilson_intervals(trained, capsys):
    out = trained / "eval"
    demo = sorted((trained / "demo").glob("episode_*.mcap"))[0]
    assert cli(["eval", str(trained / "run"), "--world", "lift_cube", "--episodes", "2",
                "--seed", "7", "--max-seconds", "1", "--out", str(out),
                "--baseline-replay", str(demo)]) == 0
    assert "simulation" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["simulation"] is True and results["world"] == "lift_cube"
    [policy, replay] = results["policies"]
    assert policy["kind"] == "policy" and replay["kind"] == "replay"
    for p in (policy, replay):
        assert p["episodes"] == 2 and [r["seed"] for r in p["runs"]] == [7, 8]
        n, s = p["episodes"], p["successes"]
        assert p["success_rate"] == s / n
        z = 1.959963984540054
        centre = (s / n + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(s / n * (1 - s / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert p["ci95"] == pytest.approx([max(0, centre - half), min(1, centre + half)])
        for r in p["runs"]:
            assert read_episode(out / r["file"]).complete
    assert (out / "results.png").stat().st_size > 1000


def test_run_policy_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert cli(["run-policy", str(tmp_path / "nope"), "--sim", "--world", "lift_cube"]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "config.json" in err
    assert cli(["eval", str(tmp_path), "--world", "juggle", "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lift_cube" in err


@pytest.mark.vboard
@pytest.mark.micropython
def test_a_policy_giving_nan_is_stopped_before_anything_is_sent(trained):
    """Real weights made NaN: the runner refuses the chunk, says why, and plans nothing."""
    from safetensors.torch import load_file, save_file

    from dexlink.learn import load_policy
    from dexlink.learn.deploy import LiveObservations, PolicyRunner, TargetSender

    run = trained / "nan-run"
    shutil.copytree(trained / "run", run, symlinks=True)
    weights = run / "checkpoints" / "last" / "ema.safetensors"
    tensors = load_file(str(weights))
    bias = next(k for k in tensors if k.endswith("final.bias") or k.endswith(".bias"))
    tensors[bias] = torch.full_like(tensors[bias], float("nan"))
    save_file(tensors, str(weights))
    policy = load_policy(run)
    live = LiveObservations(policy.config, ["index", "middle", "ring", "thumb"])
    ep = read_episode(sorted((trained / "demo").glob("episode_*.mcap"))[0])
    streams, _ = episode_streams(ep)
    t_end = min(int(s.times[-1]) for s in streams.values())
    for key in ("observation.state", "observation.images.rgb"):
        s = streams[key]
        for t, v in zip(s.times[-3:], list(s.values)[-3:]):
            if key == "observation.images.rgb":  # live frames are decoded BGR images
                v = cv2.imdecode(np.frombuffer(schema.image_bytes(v)[1], np.uint8), cv2.IMREAD_COLOR)
            live.history.add(key, int(t), v)
    for cam in ("index", "middle", "ring", "thumb"):
        live.history.add_contact(cam, t_end, 0.1, 5.0)
    plan = ActionPlan()
    sender = TargetSender(None, plan, 16, timed=False)  # never started: nothing is sent
    runner = PolicyRunner(policy, live, sender)
    runner.start()
    runner.wait(30)
    assert "refused" in runner.error and "nan" in runner.error
    assert len(plan.times) == 0 and runner.chunks == 0
