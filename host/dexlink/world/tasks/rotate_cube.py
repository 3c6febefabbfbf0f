"""rotate_cube: turn a cube a quarter turn in a palm-up hand."""
from __future__ import annotations

from dexlink.world.tasks.base import Task


class RotateCube(Task):
    name = "rotate_cube"
    description = "(in progress)"
