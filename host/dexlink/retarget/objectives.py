"""dex-retargeting's optimisers with their loss and gradient computed in numpy.

dex-retargeting evaluates each SLSQP step's loss with torch (a small autograd graph built
and run backwards per evaluation) and its gradient with one pinocchio Jacobian call per link
(each one the whole forward kinematics again). For four fingertips that is ~0.3 ms an
evaluation, nearly all of it torch's per-call overhead on arrays of a few numbers. Here the
same loss, the same gradient (including its pull towards the last answer, which dex-retargeting
adds to the gradient only) and the same configuration (Huber widths, tolerances, bounds,
DexPilot's pinch projection) come from one pinocchio pass and a few numpy operations: the
optimiser classes, SLSQP and its settings stay dex-retargeting's. tests/test_retarget.py holds
them equal to dex-retargeting's own objective, value and gradient.
"""
from __future__ import annotations

import numpy as np
import pinocchio as pin
from dex_retargeting import optimizer


def _huber(d: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """torch's SmoothL1 of each element and its derivative."""
    a = np.abs(d)
    small = a < beta
    value = np.where(small, 0.5 * d * d / beta, a - 0.5 * beta)
    slope = np.where(small, d / beta, np.sign(d))
    return value, slope


class LinkKinematics:
    """Positions and world-aligned translational Jacobians (target joints' columns) of a few
    links, from one forward-kinematics pass. A link fixed to the root (the palm) is neither
    recomputed nor differentiated."""

    def __init__(self, opt: optimizer.Optimizer, link_ids):
        self.model, self.data = opt.robot.model, opt.robot.data
        self.columns = opt.idx_pin2target
        self.positions = np.zeros((len(link_ids), 3))
        self.jacobians = np.zeros((len(link_ids), 3, len(self.columns)))
        self.moving = []
        for i, link in enumerate(link_ids):
            frame = self.model.frames[link]
            if frame.parentJoint == 0:
                self.positions[i] = frame.placement.translation
            else:
                self.moving.append((i, link))

    def update(self, qpos: np.ndarray, with_jacobians: bool) -> None:
        model, data = self.model, self.data
        if with_jacobians:
            pin.computeJointJacobians(model, data, qpos)  # the forward kinematics too
        else:
            pin.forwardKinematics(model, data, qpos)
        for i, link in self.moving:
            self.positions[i] = pin.updateFramePlacement(model, data, link).translation
            if with_jacobians:
                jac = pin.getFrameJacobian(model, data, link, pin.LOCAL_WORLD_ALIGNED)
                self.jacobians[i] = jac[:3, self.columns]

    def gradient(self, d_positions: np.ndarray) -> np.ndarray:
        """d loss / d target joints from d loss / d link positions."""
        return np.einsum("kc,kcj->j", d_positions, self.jacobians)


def _start(opt: optimizer.Optimizer, fixed_qpos) -> np.ndarray:
    if opt.adaptor is not None:  # mimic joints: not in dexlink's URDFs
        raise NotImplementedError("numpy objectives take no kinematic adaptor")
    qpos = np.zeros(opt.num_joints)
    qpos[opt.idx_pin2fixed] = fixed_qpos
    return qpos


class VectorLoss:
    """sum_i weight_i * huber(|link[task_i] - link[origin_i] - reference_i|): what
    VectorOptimizer and DexPilotOptimizer minimise (made once per optimiser)."""

    def __init__(self, opt, beta: float):
        origin, task = opt.origin_link_indices.tolist(), opt.task_link_indices.tolist()
        self.kin = LinkKinematics(opt, opt.computed_link_indices)
        # vectors = incidence @ link positions: +1 at the task link, -1 at the origin link
        self.incidence = np.zeros((len(task), len(opt.computed_link_indices)))
        self.incidence[np.arange(len(task)), task] += 1.0
        self.incidence[np.arange(len(task)), origin] -= 1.0
        self.opt, self.beta = opt, beta

    def objective(self, qpos, reference, weights, last_qpos):
        """The function of the target joints nlopt minimises (value, gradient in place)."""
        opt, kin, incidence, beta = self.opt, self.kin, self.incidence, self.beta
        pull = 2 * opt.norm_delta

        def objective(x: np.ndarray, grad: np.ndarray) -> float:
            qpos[opt.idx_pin2target] = x
            kin.update(qpos, grad.size > 0)
            diff = incidence @ kin.positions - reference
            dist = np.sqrt((diff * diff).sum(axis=1))
            value, slope = _huber(dist, beta)
            if grad.size > 0:
                unit = diff / np.maximum(dist, 1e-300)[:, None]  # torch's: 0 at a zero distance
                grad[:] = kin.gradient(incidence.T @ ((weights * slope)[:, None] * unit)) + \
                    pull * (x - last_qpos)
            return float(weights @ value)

        return objective


class VectorOptimizer(optimizer.VectorOptimizer):
    """dex-retargeting's vector optimiser (fingertip vectors from the palm), numpy loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss = VectorLoss(self, self.huber_loss.beta)

    def get_objective_function(self, target_vector, fixed_qpos, last_qpos):
        n = len(self.task_link_indices)
        return self.loss.objective(_start(self, fixed_qpos), target_vector * self.scaling,
                                   np.full(n, 1.0 / n), last_qpos)


class DexPilotOptimizer(optimizer.DexPilotOptimizer):
    """dex-retargeting's DexPilot optimiser, numpy loss. Per frame, as its own: a thumb-finger
    pair (and a finger-finger pair both pinched by the thumb) closer than project_dist is
    projected: its target becomes a short fixed distance along the human vector, weighted
    200 (400), until it is farther than escape_dist; wrist vectors weigh n_pairs + n_fingers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss = VectorLoss(self, self.huber_loss.beta)

    def _pinch(self, target_vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = len(self.projected)
        thumb = pairs - len(self.s2_project_index_task)  # thumb-finger pairs come first
        dist = np.linalg.norm(target_vector[:pairs], axis=1)
        on = self.projected
        on[:thumb][dist[:thumb] < self.project_dist] = True
        on[:thumb][dist[:thumb] > self.escape_dist] = False
        on[thumb:] = on[:thumb][self.s2_project_index_origin] & on[:thumb][self.s2_project_index_task] \
            & (dist[thumb:] <= 0.03)
        weight = np.where(on, np.array([200.0] * thumb + [400.0] * (pairs - thumb)), 1.0)
        weight = np.concatenate([weight, np.full(self.num_fingers, float(pairs + self.num_fingers))])
        scaled = target_vector * self.scaling
        direction = target_vector[:pairs] / (dist[:, None] + 1e-6)
        reference = scaled.copy()
        reference[:pairs] = np.where(on[:, None], direction * self.projected_dist[:, None],
                                     scaled[:pairs])
        return reference.astype(np.float32), weight.astype(np.float32)

    def get_objective_function(self, target_vector, fixed_qpos, last_qpos):
        reference, weight = self._pinch(target_vector)
        return self.loss.objective(_start(self, fixed_qpos), reference, weight / len(reference),
                                   last_qpos)


class PositionOptimizer(optimizer.PositionOptimizer):
    """dex-retargeting's position optimiser (fingertips in the palm frame), numpy loss:
    the mean of each coordinate's Huber error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kin = LinkKinematics(self, self.target_link_indices)

    def get_objective_function(self, target_pos, fixed_qpos, last_qpos):
        qpos = _start(self, fixed_qpos)
        kin = self.kin
        beta, pull = self.huber_loss.beta, 2 * self.norm_delta
        scale = 1.0 / np.asarray(target_pos).size

        def objective(x: np.ndarray, grad: np.ndarray) -> float:
            qpos[self.idx_pin2target] = x
            kin.update(qpos, grad.size > 0)
            value, slope = _huber(kin.positions - target_pos, beta)
            if grad.size > 0:
                grad[:] = kin.gradient(slope * scale) + pull * (x - last_qpos)
            return float(value.sum() * scale)

        return objective


OPTIMIZERS = {"vector": VectorOptimizer, "position": PositionOptimizer, "dexpilot": DexPilotOptimizer}
