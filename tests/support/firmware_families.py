"""One compiled config per driver family (PWM servos included), for the tests that run the
firmware loop with each."""
from __future__ import annotations

from conftest import ROOT
from dexlink.hwconfig import compile_config, validate_config


def _pwm_config():
    """iso16 with its servos swapped for PWM servos on a PCA9685 (the slow family)."""
    cfg = compile_config(ROOT / "hardware" / "hands" / "iso16.toml", "virtual")
    cfg["servos"] = [{"module": "dexfw.drivers.pca9685", "cls": "PCA9685Servos", "bus": "i2c1",
                      "joints": list(range(16)),
                      "args": {"addr": 0x40, "channels": list(range(16))}}]
    validate_config(cfg, "pwm test config")
    return cfg


FAMILIES = {
    "as5600+feetech": lambda: compile_config(ROOT / "hardware/hands/iso16.toml", "virtual"),
    "mt6701+feetech": lambda: compile_config(ROOT / "hardware/hands/iso22.toml", "virtual"),
    "as5048a+dynamixel+coupling": lambda: compile_config(ROOT / "hardware/hands/tendon16.toml",
                                                         "virtual"),
    "as5600+pca9685": _pwm_config,
}
