"""The reference hand file, and a private copy of it for tests that write beside it (its
calibration file)."""
from __future__ import annotations

import shutil

from conftest import ROOT

ISO16 = ROOT / "hardware" / "hands" / "iso16.toml"


def hand_copy(tmp_path):
    hand = tmp_path / "iso16.toml"
    shutil.copyfile(ISO16, hand)
    return hand
