"""Reaching a board: a real one on a serial port, or a virtual one started and flashed for
a hand; either way a connected `Link`, named after the hand's joints and motors.

    with connect(BoardOptions(port="/dev/ttyACM0", hand=Path("iso16.toml"))) as board:
        board.link.set_mode(...)
    with connect(BoardOptions()) as board:       # a fresh virtual board, default hand
        board.virtual.operator("sweep")

Every command that talks to a board, the recording API and the benchmarks open it here.
Problems the user can fix (no such hand file, a port that does not open, a hand that cannot
be flashed) are `BoardError`s naming the file or port.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dexlink import hwconfig
from dexlink.errors import UserError
from dexlink.link import DEFAULT_BAUD, Link, LinkError

if TYPE_CHECKING:  # imported when a virtual board is first wanted (see _sim_module)
    from dexlink.sim import VirtualBoard
    from dexlink.sim.worldbridge import WorldOptions

DEFAULT_HAND = "iso16"  # the hand a virtual board simulates unless told otherwise


class BoardError(UserError):
    """The board could not be reached, started or flashed; the message says which and why."""


@dataclass(frozen=True)
class BoardOptions:
    """Which board: `port` (a serial port or pyserial URL), or None for a fresh virtual
    board running the firmware for `hand`."""

    port: str | None = None
    hand: str | Path | None = None  # a hand file or a shipped hand's name: joint names;
    # with a virtual board, the hand it simulates
    baud: int = DEFAULT_BAUD
    world: WorldOptions | None = None  # a virtual board's physics world (None: none; its
    # hand, when not given, is the board's)
    target: str | None = None  # the real board a virtual one runs as (dexlink.targets;
    # None: the hand's own board if it names one, else full speed)

    @property
    def virtual(self) -> bool:
        return self.port is None


@dataclass
class ConnectedBoard:
    """A board reached by `connect`: its open link, and what was learnt on the way."""

    link: Link
    hand: Path | None  # the hand file in use (None: a real board named without one)
    joint_names: list[str]
    virtual: VirtualBoard | None = None  # the virtual board, when options.port is None


def default_hand() -> Path:
    return hwconfig.hand_path(DEFAULT_HAND)


def resolve_hand(hand: str | Path) -> Path:
    """A hand file: a shipped hand's name ("iso16") or a path to a file that exists."""
    path = hwconfig.hand_path(hand)
    if not path.is_file():
        raise BoardError("%s: no such hand file (hands come with dexlink in %s)"
                         % (path, hwconfig.HANDS))
    return path


def hand_file(options: BoardOptions) -> Path | None:
    """The hand file in use: the one asked for, else the default hand for a virtual board,
    else None. A missing file is a BoardError."""
    if options.hand is None:
        return default_hand() if options.virtual else None
    return resolve_hand(options.hand)


def hand_names(hand: Path | None) -> tuple[list[str], list[str]]:
    """(joint names, motor names in the board's motor order) of a hand file; ([], []) for
    none. Motors: a coupled hand's [[motors]], else the joints that have a servo (the
    order hwconfig.compile_config numbers them in)."""
    if hand is None:
        return [], []
    table = hwconfig.load_hand(hand)
    joints = [j["name"] for j in table["joints"]]
    if "motors" in table:
        return joints, [m.get("name", "") for m in table["motors"]]
    return joints, [j["name"] for j in table["joints"] if "servo" in j]


@contextlib.contextmanager
def connect(options: BoardOptions, **link_options) -> Iterator[ConnectedBoard]:
    """An open Link to options.port, or to a freshly started and flashed virtual board.
    link_options go to `Link` (timeouts, reconnect). On exit the link is closed and a
    virtual board stopped."""
    hand = hand_file(options)
    joints, motors = hand_names(hand)  # a bad hand file: said before any board is touched
    with contextlib.ExitStack() as stack:
        url, virtual = options.port, None
        if options.virtual:
            virtual = stack.enter_context(virtual_board(hand, world=options.world,
                                                        target=options.target))
            url = virtual.stable_port  # like /dev/serial/by-id: survives an unplug and replug
        link = Link(url, options.baud, **link_options)
        link.use_names(joints, motors)  # FAULTs name their joint or motor
        try:
            link.open()
        except LinkError as e:
            raise BoardError(str(e)) from None
        stack.callback(link.close)
        yield ConnectedBoard(link, hand, joints, virtual)


@contextlib.contextmanager
def open_link(options: BoardOptions, **link_options) -> Iterator[Link]:
    """`connect`, for callers that only need the link."""
    with connect(options, **link_options) as board:
        yield board.link


@contextlib.contextmanager
def virtual_board(hand: Path | None, *, board: str | Path | None = None,
                  calibration: str | Path | None = None, fs: str | Path | None = None,
                  progress: Callable[[str], None] | None = None,
                  world: WorldOptions | None = None,
                  target: str | None = None) -> Iterator[VirtualBoard]:
    """A running virtual board, flashed with the firmware for
    `hand` (None: left as it is, bare MicroPython or an earlier flash in `fs`).
    world: the physics world it runs in (None: none); simulating `hand` unless it names one.

    board: the board description (None: the virtual board's); calibration: as `dexlink
    flash` takes it; fs: the board's filesystem directory (kept; None: a temporary one);
    progress: called with each line of the flash; target: the real board it runs as
    (dexlink.targets; None: the hand's own board if it names one, else full speed).
    """
    if hand is not None:
        check_hand(hand, board, calibration)  # a hand that cannot be flashed: before starting
    if world is not None and world.hand is None and hand is not None:
        world = dataclasses.replace(world, hand=hand)  # the world's hand is the flashed one
    with started_virtual_board(fs, world) as vb:
        if hand is not None:
            flash_virtual_board(vb, hand, board=board, calibration=calibration, progress=progress,
                                target=target)
        yield vb


def check_hand(hand: Path, board: str | Path | None = None,
               calibration: str | Path | None = None) -> None:
    """Refuse a hand (or calibration) the firmware could not be flashed with, naming the
    file and field, before any board is touched."""
    from dexlink.flash import FlashError, check_config
    try:
        check_config(hand, board or _sim_module("dexlink.sim.flashing").VIRTUAL_BOARD, calibration)
    except FlashError as e:
        raise BoardError(str(e)) from None


@contextlib.contextmanager
def started_virtual_board(fs: str | Path | None = None,
                          world: WorldOptions | None = None) -> Iterator[VirtualBoard]:
    """A running virtual board with nothing flashed yet; fs: its filesystem directory
    (kept; None: a temporary one); world: the physics world it runs in (None: none).
    Stopped on exit."""
    sim = _sim_module("dexlink.sim")
    try:
        vb = sim.VirtualBoard(fs, world=world)
    except sim.VirtualBoardError as e:
        raise BoardError(str(e)) from None
    try:
        try:
            vb.start()
        except sim.VirtualBoardError as e:
            raise BoardError("could not start the virtual board: %s" % e) from None
        yield vb
    finally:
        vb.close()


def flash_virtual_board(vb: VirtualBoard, hand: Path, *, board: str | Path | None = None,
                        calibration: str | Path | None = None,
                        progress: Callable[[str], None] | None = None,
                        target: str | None = None) -> None:
    """Flash a running virtual board with the firmware for `hand`, as a real one is
    (timed as the real board `target`, see virtual_board)."""
    from dexlink.flash import FlashError
    sim, flashing = _sim_module("dexlink.sim"), _sim_module("dexlink.sim.flashing")
    try:
        flashing.flash_virtual(vb, hand, board or flashing.VIRTUAL_BOARD, progress, calibration,
                               target)
    except (FlashError, sim.VirtualBoardError) as e:
        raise BoardError("could not flash the virtual board with %s: %s" % (Path(hand).name, e)) from None


def _sim_module(name: str):
    """A module of dexlink.sim, imported when a virtual board is first wanted: the commands
    for real boards work in an installation without it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise BoardError(
            "the virtual board is not available in this installation (%s)" % e
        ) from None
