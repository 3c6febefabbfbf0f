"""`dexlink world`: the physics world's tasks (the world a virtual board can run in)."""
from __future__ import annotations

import argparse

from dexlink.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "world", help="the physics world's tasks",
        description="The tasks of the physics world (dexlink.world): a MuJoCo hand, its arm "
                    "and a task's objects, which a virtual board can run under its firmware. "
                    "--list prints one task a line: its name, then what it asks.",
        epilog="example:\n  dexlink world --list",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="list the tasks, one a line")
    p.set_defaults(func=world_command)


def world_command(args) -> int:
    if not args.list:
        raise UserError("nothing to do: --list lists the world's tasks")
    from dexlink.world import tasks

    for name, description in tasks.describe():
        print("%s  %s" % (name, description))
    return 0
