"""Physical parameters of the servo models a hand file can name (`servo.model`).

Data, not code: a lab adding a servo adds a row. Torques are the makers' stall torques at
the voltage named; `kp_nm_per_rad` is the simulated position gain. For the STS3215, kp 6
was measured to close an iso16 hand on an 8 cm, 250 g box and hold it; the others take
the same stiffness relative to their stall torque (full torque at about 0.32 rad, 18 deg,
of position error), so every servo saturates at the same error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Position error (rad) at which the simulated servo reaches its stall torque: STS3215's
# 1.9 N m / kp 6.
SATURATION_RAD = 1.9 / 6.0


@dataclass(frozen=True)
class ServoModel:
    name: str
    stall_torque_nm: float   # at `volts`
    volts: float
    no_load_speed_dps: float  # output shaft, degrees per second, at `volts`
    source: str

    @property
    def kp_nm_per_rad(self) -> float:
        return self.stall_torque_nm / SATURATION_RAD

    @property
    def max_speed_rad_s(self) -> float:
        return math.radians(self.no_load_speed_dps)


def _rpm(rev_per_min: float) -> float:
    return rev_per_min * 6.0


def _s_per_60deg(seconds: float) -> float:
    return 60.0 / seconds


_KGCM = 9.80665 / 100.0  # N m per kg cm, the unit hobby-servo sheets use

SERVO_MODELS = {s.name: s for s in (
    ServoModel("sts3215", 19.5 * _KGCM, 7.4, _s_per_60deg(0.222),
               "Feetech STS3215 (7.4 V version): 19.5 kg cm, 0.222 s/60 deg"),
    ServoModel("sts3032", 4.5 * _KGCM, 6.0, _s_per_60deg(0.11),
               "Feetech STS3032, approximate: 4.5 kg cm, 0.11 s/60 deg at 6 V"),
    ServoModel("xl330", 0.52, 5.0, _rpm(103),
               "ROBOTIS XL330-M288-T e-manual: 0.52 N m, 103 rev/min at 5.0 V"),
    ServoModel("xm430", 4.1, 12.0, _rpm(46),
               "ROBOTIS XM430-W350 e-manual: 4.1 N m, 46 rev/min at 12 V"),
    ServoModel("pwm", 9.4 * _KGCM, 4.8, _s_per_60deg(0.17),
               "a generic metal-gear PWM servo (MG996R class), approximate: 9.4 kg cm at 4.8 V"),
)}
