"""Where the files dexlink ships beside its code are: the one module that knows.

    firmware_dir()       firmware/: main.py (runs at boot) and the dexfw package
    board_checker()      firmware/dexfw/config.py, the board's check of dexlink.json
    protocol_dir()       the dexproto package; a board gets protocol_board_files()
    boards_dir()         hardware/boards/*.toml
    hands_dir()          hardware/hands/*.toml
    sim_board_dir()      the simulated rig's MicroPython modules (vmachine, vservo, ...)

An installed wheel carries firmware/ and hardware/ as package data in dexlink/_assets/
(setup.py copies them there at build time); an editable install or a checkout on
sys.path reads them where they live in the repository. Both are found through
importlib.resources. Everything returned is a real directory: the MicroPython
interpreter, mpy-cross and mpremote are handed these paths.
"""
from __future__ import annotations

import functools
import importlib.resources
import importlib.util
from pathlib import Path

from dexlink.errors import UserError

ASSETS = "_assets"  # dexlink/_assets/{firmware,hardware} inside an installed wheel
# Protocol modules the host alone uses (CPython only): never copied to a board.
PROTOCOL_HOST_ONLY = frozenset({"stream.py"})


class ResourceError(UserError):
    """dexlink's own files are missing: an install that lost its package data."""


def _package_dir(package: str) -> Path:
    where = importlib.resources.files(package)
    if not isinstance(where, Path):  # a zip import: the tools need real files
        raise ResourceError("%s is not installed as plain files (%s); reinstall dexlink with pip"
                            % (package, where))
    return where


@functools.cache
def _assets_root() -> Path:
    """The directory that holds firmware/ and hardware/."""
    here = _package_dir("dexlink")
    shipped = here / ASSETS
    if shipped.is_dir():
        return shipped
    checkout = here.parents[1]  # host/dexlink -> the repository
    if (checkout / "firmware" / "main.py").is_file() and (checkout / "hardware").is_dir():
        return checkout
    raise ResourceError("%s: no firmware and hardware files beside the dexlink package (neither "
                        "%s nor a checkout); reinstall dexlink" % (here, ASSETS))


def firmware_dir() -> Path:
    """firmware/: main.py and the dexfw package, as they are copied to a board."""
    return _assets_root() / "firmware"


def firmware_main() -> Path:
    """firmware/main.py: a board runs it at boot."""
    return firmware_dir() / "main.py"


def firmware_package() -> Path:
    """firmware/dexfw: the firmware package."""
    return firmware_dir() / "dexfw"


def hardware_dir() -> Path:
    """hardware/: the boards and hands that come with dexlink."""
    return _assets_root() / "hardware"


def boards_dir() -> Path:
    return hardware_dir() / "boards"


def hands_dir() -> Path:
    return hardware_dir() / "hands"


def protocol_dir() -> Path:
    """The dexproto package: the same files on the host and (but the host-only ones) the board."""
    return _package_dir("dexproto")


def protocol_board_files() -> list[Path]:
    """The dexproto modules a board imports: every module but the host-only ones."""
    return sorted(p for p in protocol_dir().glob("*.py") if p.name not in PROTOCOL_HOST_ONLY)


def sim_board_dir() -> Path:
    """The simulated rig: the MicroPython modules the virtual board puts on its path."""
    return _package_dir("dexlink.sim") / "board"


@functools.cache
def board_checker():
    """firmware/dexfw/config.py, loaded as a plain module (it is board code, not a host module).

    The board's own rules and limits for dexlink.json (MAX_JOINTS, INT16, LOOP_LIMITS,
    JOINT_LIMITS, COUPLING_BOUND, BUS_FIELDS, check()): the host compiles and checks
    configs with these, so host and board cannot disagree.
    """
    path = firmware_package() / "config.py"
    if not path.is_file():
        raise ResourceError("%s: missing (the board's config checker); reinstall dexlink" % path)
    spec = importlib.util.spec_from_file_location("dexlink._board_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
