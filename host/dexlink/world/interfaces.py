"""Simulated teleop interfaces: the exoskeleton operator's intent (operator.Operator: the
angles of the person's own joints, isomorphic to the hand's) turned into what each device
would report of that person's hand, and then into hand targets the way each device's path
does it.

- exo: the exoskeleton; joint i drives joint i (12-bit AS5600 encoders: 0.088 deg steps),
  on the board at 1 kHz. No retargeting.
- glove, avp, camera: a human hand of human proportions (interfaces_hand.HumanHand, the
  person's hand length drawn per operator) posed by the same angles; the device samples it
  at its rate, with its joint-angle error (a slow part that drifts and a fast part;
  where the source also gives a fingertip error, shaped finger by finger so that both
  figures hold: FingertipShapedError), landmark jitter, lost frames and, for cameras,
  fingers hidden when curled; frames reach the host after its latency; the real
  retargeting (dexlink.retarget) makes the targets.

The figures, each with its source (or marked a guess), are in PROFILES. No device is
given more error than its published figures; where a figure is missing the guess leans
towards the device. The arm (the wrist pose) is the same tracker for every interface, so
the comparison is of the hands alone; a practised operator waits for the robot hand to
close before lifting, so the wait grows by the device's latency.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from dexlink.inputs.frame import FINGER_CHAINS, HandFrame
from dexlink.retarget.skeleton import human_finger
from dexlink.world.interfaces_hand import HAND_LENGTH_MEAN_M, HAND_LENGTH_SD_M, HumanHand

EXO_STEP_DEG = 360.0 / 4096  # AS5600, 12 bits a turn
EXO_LATENCY_S = 0.001  # one 1 kHz board cycle from encoder to servo goal
CURLED_DEG = 90.0  # a finger bent this much in total is hidden behind the back of the hand


@dataclass(frozen=True)
class DeviceProfile:
    """What a device reports of a hand, and how late. Sources in `sources`."""

    name: str
    label: str
    rate_hz: float
    latency_s: float  # capture -> on the host, mean
    jitter_s: float  # +- uniform around the mean
    angle_error_deg: float  # RMS finger joint-angle error against motion capture
    fingertip_error_m: float | None  # RMS fingertip position error (None: not published)
    slow_share: float  # of that error's variance, the part that drifts slowly (pose-dependent)
    drift_tau_s: float  # how slowly that part changes
    landmark_noise_m: float  # per-joint position jitter on top
    frame_loss: float  # probability a frame never arrives (tracking lost, packet lost)
    occluded_loss: float  # probability per frame that a curled finger's joints are lost
    person_skeleton: bool  # False: the device poses a standard hand, not the person's
    method: str  # retargeting method
    smoothing: float | None  # low-pass alpha on the retargeted angles (None: off)
    sources: str


PROFILES = {
    "glove": DeviceProfile(
        name="glove", label="data glove (IMU/EMF, Rokoko-style)", rate_hz=100.0,
        latency_s=0.020, jitter_s=0.005, angle_error_deg=5.0, fingertip_error_m=None,
        slow_share=0.7, drift_tau_s=2.0,
        landmark_noise_m=0.001, frame_loss=0.005, occluded_loss=0.0, person_skeleton=False,
        method="vector", smoothing=None,
        sources="Rokoko Studio streams up to 100 fps (setting). Rokoko and Manus publish no "
                "joint-angle accuracy: 5 deg RMS is a guess at the low end of IMU-glove "
                "validations; latency 20 ms and 0.5 % lost packets are guesses. Gloves stream "
                "joint rotations on the studio's actor, so positions are those of a standard "
                "hand, not the wearer's. No fingertip figure either: a glove senses each "
                "segment's rotation on its own and locates no fingertip, so its joint errors "
                "are taken as independent (fingertip_error_m None)."),
    "avp": DeviceProfile(
        name="avp", label="Apple Vision Pro hand tracking (avp-stream)", rate_hz=90.0,
        latency_s=0.100, jitter_s=0.025, angle_error_deg=9.6, fingertip_error_m=0.011,
        slow_share=0.7, drift_tau_s=0.5,
        landmark_noise_m=0.002, frame_loss=0.01, occluded_loss=0.0, person_skeleton=True,
        method="vector", smoothing=None,
        sources="Latency: avp-stream's docs give 50-150 ms over WiFi; hand tracking alone "
                "measured ~128 ms on visionOS 1.1 (UploadVR). No published AVP joint "
                "accuracy found: the headset-tracking figure used is Meta Quest 2's, 9.6 deg "
                "mean finger joint-angle error, 1.1 cm fingertip error (Abdlkarim et al., "
                "Behav Res Methods 2024, doi:10.3758/s13428-022-02051-8). 90 Hz hand "
                "tracking (visionOS 2). Slow share, landmark jitter and 1 % lost frames are "
                "guesses. Headsets infer hidden fingers rather than drop them, and smooth them "
                "on the device: no smoothing added. Both published means are taken as RMS "
                "(the smaller error: leans towards the device). The fingertip error is "
                "absolute (touches on a fixed grid of targets): it includes where the whole "
                "hand is placed, which here the arm's common tracker gives every interface "
                "without error; taken whole as the fingers' own error, as the split is not "
                "published, it leans against the device."),
    "camera": DeviceProfile(
        name="camera", label="webcam + MediaPipe Hands", rate_hz=30.0,
        latency_s=0.065, jitter_s=0.010, angle_error_deg=22.5, fingertip_error_m=0.0175,
        slow_share=0.6, drift_tau_s=0.3,
        landmark_noise_m=0.003, frame_loss=0.03, occluded_loss=0.3, person_skeleton=True,
        method="vector", smoothing=0.2,
        sources="MediaPipe vs Vicon over six hand tasks: mean joint-angle RMSE 22.5 deg, "
                "growing with speed (Sprague et al., Sensors 2025, 25(18):5716). 30 fps "
                "webcam; latency 65 ms (a frame's exposure and transfer plus ~10 ms palm "
                "detection measured here: partly a guess); 3 % frames without a detection, "
                "curled fingers lost 30 % of frames, 3 mm landmark jitter: guesses. Smoothed "
                "as dex-retargeting's teleop configs do for camera keypoints (alpha 0.2). No "
                "fingertip error of plain MediaPipe Hands against motion capture found; the "
                "nearest published: an RGB-camera tracker built on MediaPipe, median "
                "position error below 1.75 cm within 75 cm of the camera, slightly worse "
                "than Quest and Leap Motion (Reimer et al., Front. Virtual Real. 2023, "
                "doi:10.3389/frvir.2023.1169313), taken as RMS. Like the Quest's it is an "
                "absolute error: it includes where the whole hand is placed, which here the "
                "arm's common tracker gives every interface without error."),
}
INTERFACES = ("exo",) + tuple(PROFILES)


class SlowNoise:
    """Per-joint error: an Ornstein-Uhlenbeck part (pose-dependent bias, drift) and a white
    part, with a total RMS of sigma."""

    def __init__(self, rng, n: int, sigma: float, slow_share: float, tau_s: float):
        self.rng = rng
        self.slow_sd = sigma * np.sqrt(slow_share)
        self.fast_sd = sigma * np.sqrt(1.0 - slow_share)
        self.tau = tau_s
        self.state = rng.normal(0.0, self.slow_sd, n)
        self.t = None

    def sample(self, t: float) -> np.ndarray:
        if self.t is not None:
            a = np.exp(-(t - self.t) / self.tau)
            self.state = a * self.state + np.sqrt(1 - a * a) * self.rng.normal(0, self.slow_sd,
                                                                                 self.state.size)
        self.t = t
        return self.state + self.rng.normal(0.0, self.fast_sd, self.state.size)


class FingertipShapedError:
    """Joint errors that agree with a fingertip figure as well as a joint-angle one.

    A tracker places the fingertips well and gets the split of the bend between a finger's
    joints wrong: independent per-joint errors of the published RMS put the tips about twice
    as far off as the same sources measure. So each finger's error (independent, RMS sigma
    per joint) is reshaped at the present pose along the eigenvectors of J^T J (J: the
    fingertip Jacobian of the hand the device poses): the directions that move the tip are
    scaled so that the tip error is the published one (less the landmark jitter's share),
    the fingertip-preserving ones so that the joints' RMS stays sigma. A direction counts
    as moving the tip by s^2 / (s^2 + lam) (s: its tip gain), so the shape changes smoothly
    with the pose. Where the two figures cannot both hold, each is kept at or below its
    figure (leaning towards the device)."""

    SOFT = 0.1  # lam = (SOFT x the finger's largest tip gain)^2

    def __init__(self, hand, sigma_rad: float, tip_rms_m: float, landmark_sd_m: float):
        self.hand = hand
        self.sigma = sigma_rad
        # the landmark jitter (per axis) lands on the reported tip too: the joints get the rest
        self.tip_ms = max(tip_rms_m ** 2 - 3.0 * landmark_sd_m ** 2, 0.0)

    def shape(self, z: np.ndarray, q_rad: np.ndarray) -> np.ndarray:
        """The error z (independent, RMS sigma per joint) reshaped at pose q_rad."""
        e = z.copy()
        for idx, jac in self.hand.fingertip_jacobians(q_rad):
            e[idx] = self._finger_matrix(jac) @ z[idx]
        return e

    def _finger_matrix(self, jac: np.ndarray) -> np.ndarray:
        gain2, vecs = np.linalg.eigh(jac.T @ jac)
        gain2 = np.clip(gain2, 0.0, None)
        n = gain2.size
        moves = gain2 / (gain2 + (self.SOFT ** 2) * gain2.max() + 1e-300)
        keeps = 1.0 - moves
        # weights w = a * moves + b * keeps per direction (variance factors on z):
        # sum(w) = n keeps the joint RMS at sigma; sum(gain2 * w) sigma^2 = the tip's mean square
        tip = self.tip_ms / self.sigma ** 2
        a = b = -1.0
        try:
            a, b = np.linalg.solve([[moves.sum(), keeps.sum()],
                                    [(gain2 * moves).sum(), (gain2 * keeps).sum()]], [n, tip])
        except np.linalg.LinAlgError:
            pass
        if b < 0 or not np.isfinite(b):  # the tip figure needs more than the joint one allows
            a, b = min(n / moves.sum(), tip / max((gain2 * moves).sum(), 1e-300)), 0.0
        elif a < 0:  # a tip error smaller than the fingertip-preserving part alone gives
            a, b = 0.0, min(n / max(keeps.sum(), 1e-300), tip / max((gain2 * keeps).sum(), 1e-300))
        w = np.sqrt(a * moves + b * keeps)
        return (vecs * w) @ vecs.T


@dataclass
class Delivered:
    captured_s: float
    frame: HandFrame
    intent_deg: np.ndarray  # what the person's joints were at capture


class SimulatedDevice:
    """One device on one person: `capture(t, joints_deg, wrist)` when a sample is due, and
    `arrived(t)` the newest frame on the host by t (None if nothing new)."""

    def __init__(self, profile: DeviceProfile, geometry, rng: np.random.Generator):
        self.profile = p = profile
        self.rng = rng
        hand_length = float(np.clip(rng.normal(HAND_LENGTH_MEAN_M, HAND_LENGTH_SD_M), 0.15, 0.22))
        self.person = HumanHand.person(geometry, hand_length, rng)
        self.seen = self.person if p.person_skeleton else HumanHand.person(geometry,
                                                                           HAND_LENGTH_MEAN_M)
        self.fingers = [[i for i, j in enumerate(geometry.joints) if j.finger == f.name]
                        for f in geometry.fingers]
        self.noise = SlowNoise(rng, len(geometry.joints), np.radians(p.angle_error_deg),
                               p.slow_share, p.drift_tau_s)
        self.shaped = None if p.fingertip_error_m is None else FingertipShapedError(
            self.seen, np.radians(p.angle_error_deg), p.fingertip_error_m, p.landmark_noise_m)
        self.next_capture = 0.0
        self.queue: collections.deque[tuple[float, Delivered]] = collections.deque()
        self.seq = 0
        self.captured = self.lost = 0
        self.error_rad = np.zeros(len(geometry.joints))

    @property
    def hand_length_m(self) -> float:
        return self.person.scale * self.person.geometry.hand_length_m

    def due(self, t: float) -> bool:
        return t + 1e-9 >= self.next_capture

    def capture(self, t: float, joints_deg, wrist: np.ndarray) -> None:
        """Sample the hand now; the frame goes on its way to the host (or is lost)."""
        p = self.profile
        self.next_capture += 1.0 / p.rate_hz
        frame = self.sample(t, joints_deg, wrist)
        if frame is not None:
            arrive = t + p.latency_s + self.rng.uniform(-p.jitter_s, p.jitter_s)
            self.queue.append((arrive, Delivered(t, frame, np.asarray(joints_deg, dtype=float))))

    def sample(self, t: float, joints_deg, wrist: np.ndarray, t_ns: int | None = None):
        """The frame the device makes of the hand at angles joints_deg (None: lost)."""
        p = self.profile
        self.captured += 1
        q = np.radians(np.asarray(joints_deg, dtype=float))
        error = self.noise.sample(t)  # the device's error, on this person's pose
        if self.shaped is not None:
            error = self.shaped.shape(error, q)
        self.error_rad = error  # kept for the tests: what the frame's angles were off by
        measured = q + error
        if self.rng.random() < p.frame_loss:
            self.lost += 1
            return None
        joints = self.seen.openxr(measured)
        joints += self.rng.normal(0.0, p.landmark_noise_m, joints.shape)
        valid = np.ones(len(joints), dtype=bool)
        if p.occluded_loss:
            self._occlude(q, valid)
        self.seq += 1
        return HandFrame(t_ns=int(t * 1e9) if t_ns is None else t_ns, seq=self.seq, source=p.name,
                         side="right", wrist=wrist, joints=joints, valid=valid)

    def _occlude(self, q, valid):
        for f, idx in zip(self.person.geometry.fingers, self.fingers):
            name = human_finger(f.name)
            if name is None or name == "thumb" or not idx:
                continue
            if np.degrees(np.abs(q[idx]).sum()) > CURLED_DEG and self.rng.random() < \
                    self.profile.occluded_loss:
                valid[list(FINGER_CHAINS[name][3:])] = False

    def arrived(self, t: float) -> Delivered | None:
        """The newest frame on the host by t (older ones skipped, as a live teleop does)."""
        newest = None
        while self.queue and self.queue[0][0] <= t:
            newest = self.queue.popleft()[1]
        return newest
