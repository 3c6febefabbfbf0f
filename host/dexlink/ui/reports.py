"""What the recording commands print: a recording's progress and result, an inspection of
recorded episodes, an export with its progress bar. `dexlink record`, `inspect`, `export`
and `demo` all print through here, so the demo shows what the commands show."""
from __future__ import annotations

import sys
from pathlib import Path

from dexlink.cli_support import print_error
from dexlink.errors import UserError, error_text
from dexlink.record.recording import RecordProgress, RecordResult


def print_record_progress(p: RecordProgress) -> None:
    if p.starting:
        print("episode %d/%d: %s" % (p.episode, p.episodes, p.path.name), flush=True)
    else:
        print("  " + p.status, flush=True)


def print_record_result(result: RecordResult) -> None:
    for e in result.kept:
        print("kept %s: %.1f s, %d messages, %d dropped%s" % (
            e["file"], e["duration_s"], e["messages"], e["dropped"],
            ", marked " + e["mark"] if e["mark"] else ""))
    for name, what in result.camera_problems.items():
        print("camera %s: %s" % (name, what))
    for err in result.errors:
        print("error: " + err, file=sys.stderr)
    print("session: %s (%d episodes in %s)" % (result.directory, len(result.session.episodes),
                                                result.session.index_path.name))


def print_inspection(target: Path, plot: bool = False, plot_dir: Path | None = None) -> int:
    """A table per episode of `target` (an episode file or a session directory), and with
    `plot` its plot, tactile contact sheet and RGB-D colour sheet as PNGs (in plot_dir, else next to it).
    Returns 1 when an episode could not be read (said on stderr), else 0."""
    from rich.console import Console

    from dexlink.record.inspect import (
        contact_sheet,
        plot_episode,
        print_report,
        report,
        rgbd_sheet,
    )
    from dexlink.record.reader import episode_files, read_episode
    from dexlink.record.session import Session

    # Piped output has no width: give the stream names room rather than cut them.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    try:
        files = episode_files(target)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    if target.is_dir() and (target / "session.json").exists():
        left = Session(target).unindexed()
        if left:
            console.print("not in the index (unfinished or cut short; see `dexlink recover`): "
                          + ", ".join(p.name for p in left))
    status = 0
    for path in files:
        try:
            ep = read_episode(path) if plot else None
            rep = report(path, ep)
        except (OSError, ValueError) as e:
            print_error("inspect", error_text(e))
            status = 1
            continue
        print_report(rep, console)
        if plot:
            where = plot_dir or path.parent
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError("%s: cannot write the plots there: %s" % (where, e.strerror or e)) from None
            plot_png = plot_episode(ep, where / (path.stem + "_plot.png"))
            sheets = [contact_sheet(ep, where / (path.stem + "_tactile.png")),
                      rgbd_sheet(ep, where / (path.stem + "_rgbd.png"))]
            console.print("plots: " + ", ".join(str(p) for p in [plot_png, *sheets] if p))
    return status


def print_export(session: Path, out: Path, fmt: str = "lerobot", fps: int = 30,
                 robot_type: str = "dexlink", **options) -> None:
    """Export a session (fmt "lerobot" or "zarr") with a progress bar; say what was skipped
    and what was written. Nothing exportable, or a file that fails, is a UserError.
    options: export_lerobot's (image_size, cameras, append, ...), or export_zarr's (cameras)."""
    from rich.progress import Progress

    from dexlink.record.export import export_lerobot, export_zarr

    try:
        with Progress(transient=not sys.stdout.isatty()) as progress:
            if fmt == "lerobot":
                n, frames, skipped = export_lerobot(session, out, fps, robot_type, progress,
                                                    **options)
            else:
                n, frames, skipped = export_zarr(session, out, fps, progress, **options)
    except (OSError, ValueError) as e:
        raise UserError(error_text(e)) from None
    for path, why in skipped:
        print("skipped %s: %s" % (path, why))
    if not n:
        raise UserError("no episode could be exported from %s" % session)
    print("%s %d episodes, %d frames at %d fps to %s (%s)" % (
        "appended" if options.get("append") else "exported", n, frames, fps, out, fmt))
