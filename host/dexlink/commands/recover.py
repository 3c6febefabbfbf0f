"""`dexlink recover`: rebuild an episode file cut short."""
from __future__ import annotations

import argparse
from pathlib import Path

from dexlink.errors import UserError, error_text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recover", help="rebuild an episode file cut short (killed recorder, full disk)",
        description="Copy every complete chunk of a damaged episode file into a new, complete "
                    "MCAP file and say how many messages were saved. NAME.mcap.part becomes "
                    "NAME.mcap (and joins its session's index); any other NAME.mcap becomes "
                    "NAME.recovered.mcap unless --out says otherwise.",
        epilog="example:\n  dexlink recover sessions/cube/episode_0003.mcap.part",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="FILE.mcap", help="the damaged episode file")
    p.add_argument("--out", type=Path, metavar="FILE.mcap", help="where to write the rebuilt file")
    p.set_defaults(func=recover_command)


def recover_command(args) -> int:
    from dexlink.record.recover import recover

    try:
        r = recover(args.file, args.out)
    except (OSError, ValueError) as e:
        raise UserError(error_text(e)) from None
    state = ("it was complete" if r.was_complete
             else "it stopped at: %s" % r.stopped_because)
    print("saved %d messages on %d channels (%.2f s) from %s into %s; %s"
          % (r.messages, r.channels, r.span_s, r.source, r.output, state))
    if r.indexed:
        print(
            "added %s to the session index %s" % (r.output.name, r.output.parent / "session.json")
        )
    return 0
