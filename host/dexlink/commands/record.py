"""`dexlink record`: record multimodal episodes (telemetry, tactile, RGB-D) into a session."""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path

from dexproto import catalog

from dexlink.commands.session import (CommandError, add_board_args, hand_path, joint_names,
                                      run_command, sim_board_and_link)

KEYS_HELP = ("keys: s start, k stop and keep, d stop and discard, y mark success, "
             "n mark failure, q quit")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record", help="record episodes: joints, tactile and RGB-D frames on one clock",
        description="Record episodes into a session directory: one MCAP file per episode "
                    "(telemetry, one channel per camera, contact measures, events) and "
                    "session.json, the index of the finished ones. On a terminal, keys drive "
                    "it (%s); otherwise each episode lasts --duration seconds. With --sim the "
                    "cameras are simulated from the hand's joint angles." % KEYS_HELP,
        epilog="examples:\n  dexlink record --sim --task 'pick the cube' --episodes 2 "
               "--duration 5 --out sessions/cube\n  dexlink record --port /dev/ttyACM0 "
               "--hand hardware/hands/iso16.toml --task grasp --tactile index=/dev/video2:digit "
               "--realsense",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_args(p)
    p.add_argument("--task", required=True, help="what the operator does, e.g. 'pick the cube'")
    p.add_argument("--episodes", type=int, default=1, metavar="N",
                   help="episodes to record (default 1)")
    p.add_argument("--duration", type=float, default=10.0, metavar="S",
                   help="seconds per episode when not interactive (default 10)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="session directory (default sessions/<date-time>)")
    p.add_argument("--mode", choices=["teleop", "host", "idle"], default="teleop",
                   help="board mode while recording (default teleop)")
    p.add_argument("--tactile", action="append", default=[], metavar="NAME=DEVICE[:PRESET]",
                   help="a visuotactile camera, e.g. index=/dev/video2:digit (presets: %s)"
                        % ", ".join(_presets()))
    p.add_argument("--realsense", nargs="?", const="", metavar="SERIAL",
                   help="an Intel RealSense RGB-D camera (optionally by serial number)")
    p.add_argument("--sim-cameras", action="store_true",
                   help="simulated tactile and RGB-D cameras (the default with --sim)")
    p.add_argument("--no-keys", action="store_true", help="never read keys, even on a terminal")
    p.set_defaults(func=lambda a: run_command(record, a))


def _presets():
    from dexlink.capture.tactile import PRESETS
    return PRESETS


def fingertips_for(args, n_joints: int):
    """Fingertips of the hand file (joints grouped by finger), else an even split."""
    from dexlink.capture.sim import default_fingertips, fingertips_from_hand
    from dexlink.hwconfig import load_hand

    if args.hand or args.sim:
        tips = fingertips_from_hand(load_hand(hand_path(args)))
        if tips and max(max(t.joints) for t in tips) < n_joints:
            return tips
    return default_fingertips(n_joints)


def build_cameras(args, recorder, n_joints: int):
    from dexlink.capture import CameraSet, OpenCVTactileCamera, sim_cameras
    from dexlink.capture.realsense import RealSenseCamera

    cams = []
    for spec in args.tactile:
        name, sep, dev = spec.partition("=")
        if not sep or not name or not dev:
            raise CommandError("--tactile %r: expected NAME=DEVICE[:PRESET], e.g. "
                               "index=/dev/video2:digit" % spec)
        device, _, preset = dev.partition(":")
        try:
            cams.append(OpenCVTactileCamera(name, device, preset or "digit"))
        except ValueError as e:
            raise CommandError(str(e)) from None
    if args.realsense is not None:
        cams.append(RealSenseCamera(serial=args.realsense or None))
    if args.sim_cameras or (args.sim and not cams):
        cams += list(sim_cameras(recorder.joints, fingertips_for(args, n_joints)))
    try:
        return CameraSet(cams)
    except ValueError as e:
        raise CommandError(str(e)) from None


def board_metadata(link, args) -> dict:
    """What the episode files say about the rig: hand, calibration in force, firmware, board."""
    b = link.board
    meta = {"firmware_version": "%d.%d.%d" % (b.fw_major, b.fw_minor, b.fw_patch),
            "protocol": "%d.%d" % (b.proto_major, b.proto_minor), "board": b.text,
            "n_joints": b.n_joints, "loop_hz": b.loop_hz, "config_crc": "%08x" % b.config_crc,
            "joint_names": ",".join(joint_names(args))}
    if args.hand or args.sim:
        path = hand_path(args)
        meta["hand_file"] = str(path)
        meta["hand"] = path.read_text()
    calibration = []
    for j in range(b.n_joints):
        try:
            calibration.append(dict(link.get_joint(j).fields))
        except Exception as e:  # an old firmware without GET_JOINT: say so, record anyway
            calibration = "unavailable: %s" % e
            break
    meta["calibration"] = calibration
    return meta


def record(args) -> int:
    if args.episodes < 1 or args.duration <= 0:
        raise CommandError("--episodes must be at least 1 and --duration positive")
    out = args.out or Path("sessions") / time.strftime("%Y%m%d-%H%M%S")
    session = open_session(out, args.task)  # before the board: a bad --out fails at once
    with recording(args, session) as (_, _, recorder):
        try:
            interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_keys
            (run_keys if interactive else run_timed)(recorder, args)
        except OSError as e:  # an episode could not even start (disk full, directory gone)
            raise CommandError("cannot write %s: %s" % (e.filename, e.strerror)
                               if e.filename else str(e)) from None
    report_session(recorder, out)
    return 0 if not recorder.errors else 1


@contextlib.contextmanager
def recording(args, session):
    """(board, link, recorder): the board (the VirtualBoard with --sim, else None), its
    open link in --mode, and a Recorder into `session` that follows the link, cameras
    running, no episode started yet. On exit: recorder closed (episodes kept), hand IDLE.
    `dexlink record` and bench/soak.py record through this."""
    from dexlink.record.recorder import Recorder, follow_link

    with sim_board_and_link(args) as (board, link):
        meta = dict(board_metadata(link, args), task=args.task)
        recorder = Recorder(session, None, meta)
        recorder.attach_cameras(build_cameras(args, recorder, link.board.n_joints))
        stop = threading.Event()
        follow_link(link, recorder, stop)
        link.set_mode(getattr(catalog, "MODE_" + args.mode.upper()))
        recorder.start_cameras()
        recorder.cameras.wait_running()
        try:
            yield board, link, recorder
        finally:
            recorder.close(keep=True)
            stop.set()
            link.set_mode(catalog.MODE_IDLE)


def open_session(out: Path, task: str):
    """The session directory, made if needed; a clear error when it cannot be."""
    from dexlink.record.session import Session

    try:
        return Session(out, task)
    except OSError as e:
        raise CommandError("cannot record into %s: %s" % (out, e.strerror or e)) from None
    except ValueError as e:  # a damaged session.json
        raise CommandError(str(e)) from None


def run_timed(recorder, args, out=None) -> None:
    """Episodes of --duration seconds, one after the other, with a status line a second."""
    out = out or sys.stdout  # looked up now: sys.stdout may be replaced after import
    for n in range(args.episodes):
        path = recorder.start_episode()
        print("episode %d/%d: %s" % (n + 1, args.episodes, path.name), file=out, flush=True)
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            recorder.check_cameras()
            print("  " + recorder.status_line(), file=out, flush=True)
            if recorder.write_error():
                return  # the disk is full or the directory gone: stop; the error is reported
        recorder.stop_episode(keep=True)


def run_keys(recorder, args) -> None:
    from dexlink.ui.dashboard import Keys

    kept = 0
    with Keys() as keys:
        print(KEYS_HELP)  # only now: keys typed before cbreak would be flushed away
        while kept < args.episodes:
            key = keys.read(0.2)
            recorder.check_cameras()
            if key == "q" or recorder.write_error():
                break
            if key == "s" and recorder.current is None:
                recorder.start_episode()
            elif key in ("k", "d") and recorder.current is not None:
                recorder.stop_episode(keep=key == "k")
                kept += key == "k"
            elif key in ("y", "n") and recorder.current is not None:
                recorder.mark(key == "y")
            sys.stdout.write("\r\x1b[2K%s  (%d/%d kept)" % (recorder.status_line(), kept,
                                                           args.episodes))
            sys.stdout.flush()
    print()


def report_session(recorder, out: Path) -> None:
    recorder.wait_finished()
    for e in recorder.finished:
        print("kept %s: %.1f s, %d messages, %d dropped%s" % (
            e["file"], e["duration_s"], e["messages"], e["dropped"],
            ", marked " + e["mark"] if e["mark"] else ""))
    for name, what in recorder.cameras.problems().items():
        print("camera %s: %s" % (name, what))
    for err in recorder.errors:
        print("error: " + err, file=sys.stderr)
    print("session: %s (%d episodes in %s)" % (out, len(recorder.session.episodes),
                                                recorder.session.index_path.name))
