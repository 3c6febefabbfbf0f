"""Retargeting: human hand frames (dexlink.inputs.frame.HandFrame) -> the robot hand's
joint angles, for every teleop input but the exoskeleton (whose joint i is the hand's
joint i and needs none).

    from dexlink.retarget import make_retargeter
    r = make_retargeter("iso16", method="vector")  # or "position", "dexpilot"
    degrees = r.retarget(frame)                    # hand file order, within its ranges
    r.stats.as_dict()                              # time per frame

Per-operator calibration (hand size) is `OperatorCalibration`: measured from the first
frames unless given (`operator=OperatorCalibration.of_scale(1.05)` or a float).
"""
from dexlink.retarget.calibration import OperatorCalibration
from dexlink.retarget.retargeter import (
           METHODS,
           Retargeter,
           RetargetError,
           RetargetStats,
           make_retargeter,
)

__all__ = ["METHODS", "OperatorCalibration", "RetargetError", "RetargetStats", "Retargeter",
           "make_retargeter"]
