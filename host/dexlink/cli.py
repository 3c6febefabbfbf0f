"""The `dexlink` command line: one module per command in dexlink.commands, registered here,
and the one place where what a command ends with becomes an exit status."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import dexlink.commands
from dexlink import __version__
from dexlink.cli_support import print_error
from dexlink.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from dexlink.link import LinkError


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
        return EXIT_OK if args.command is None else EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except UserError as e:  # the user's to fix: one line, no traceback (bugs keep theirs)
        print_error(args.command, e)
        return e.exit_status
    except LinkError as e:  # the board went away or refused: one line too
        print_error(args.command, e)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print_error(args.command, "interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
