"""A hand file as URDF (placeholder while the writer is built)."""
from __future__ import annotations


def hand_urdf(hand_path) -> str:
    raise NotImplementedError("URDF writer not yet written")
