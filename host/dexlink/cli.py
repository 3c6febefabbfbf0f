"""The `dexlink` command line."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import dexlink.commands

from dexlink import __version__
from dexlink.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dexlink",
        description="Teleoperate a dexterous hand from an isomorphic exoskeleton and record "
                    "multimodal episodes. Every command runs on a virtual board with --sim.",
        epilog="example: dexlink demo",
    )
    p.add_argument("--version", action="version", version="dexlink %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(dexlink.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module("dexlink.commands." + info.name)
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:  # the user's to fix: one line, no traceback (bugs keep theirs)
        print("dexlink %s: %s" % (args.command, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
