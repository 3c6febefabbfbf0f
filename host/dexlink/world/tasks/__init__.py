"""The world's tasks, one file each: `names()` lists them, `get(name)` gives a task's class.

A task is a class built with a seed (`get("lift_cube")(seed)`): the seed draws its
initial state; it adds its objects to the scene, watches them while the world steps and
decides `success` or `failure` (see base.Task).
"""
from __future__ import annotations

from dexlink.errors import UserError
from dexlink.world.tasks.base import Task
from dexlink.world.tasks.feel_lift import FeelLift
from dexlink.world.tasks.lift_cube import LiftCube
from dexlink.world.tasks.pinch_lift import PinchLift
from dexlink.world.tasks.rotate_cube import RotateCube

TASKS: dict[str, type[Task]] = {t.name: t for t in (LiftCube, PinchLift, RotateCube, FeelLift)}


class UnknownTask(UserError, KeyError):
    """A task name that is not one of the world's tasks."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0]


def names() -> list[str]:
    """Every task's name, in a stable order."""
    return list(TASKS)


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every task."""
    return [(n, t.description) for n, t in TASKS.items()]


def get(name: str) -> type[Task]:
    """The class of the task called name; UnknownTask (a UserError) lists the valid names."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTask("unknown task %r; the tasks are: %s" % (name, ", ".join(TASKS))) from None
