"""Recording a session from a board: the API `dexlink record`, `dexlink demo` and the
benchmarks record through.

    result = record_session(RecordOptions(task="pick the cube", episodes=2, duration_s=5,
                                          out=Path("sessions/cube")), progress=print)
    with open_recording(options) as rec:   # or drive the episodes yourself
        rec.recorder.start_episode(); ...; rec.recorder.stop_episode()
    result = rec.result()

The board comes from dexlink.board (RecordOptions.board: a port, or a virtual board by
default) and sends a TELEMETRY sample every loop cycle while it records (fewer with
RecordOptions.telemetry_hz; dexlink.telemetry_rate); the episodes are written by
record.recorder.Recorder into a record.session.Session directory; RecordOptions.foxglove
serves a live view (dexlink.live). With a physics world under the virtual board
(RecordOptions.board.world) the cameras are the world's and its one episode lasts until
the world judges the task, marked with the verdict. User mistakes (a directory that cannot be made, a
camera that cannot be opened, a full disk at the start of an episode) are RecordErrors
naming the file or camera.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dexlink.board import BoardOptions, ConnectedBoard, connect
from dexlink.errors import UserError, error_text
from dexlink.link import Link
from dexlink.record.recorder import Recorder, follow_link
from dexlink.record.session import Session
from dexlink.telemetry_rate import telemetry_rate
from dexproto import catalog

if TYPE_CHECKING:  # imported when a recording has a host input (open_recording)
    from dexlink.teleop import TeleopSetup

DEFAULT_EPISODE_S = 10.0


class RecordError(UserError):
    """A recording that cannot be made or go on: the message names the file or camera."""


@dataclass(frozen=True)
class TactileCameraSpec:
    """A visuotactile camera: its name (a finger), its video device, its preset (PRESETS)."""

    name: str
    device: str
    preset: str = "digit"


@dataclass(frozen=True)
class RecordOptions:
    task: str  # what the operator does, e.g. "pick the cube"
    out: Path | None = None  # the session directory (None: sessions/<date-time>)
    board: BoardOptions = field(default_factory=BoardOptions)  # default: a virtual board
    episodes: int = 1
    duration_s: float = DEFAULT_EPISODE_S  # per episode, when record_session times them
    mode: int = catalog.MODE_TELEOP  # the board's mode while recording
    tactile: tuple[TactileCameraSpec, ...] = ()
    realsense: str | None = None  # a RealSense camera's serial number ("": any); None: none
    sim_cameras: bool = False  # simulated cameras (also the default on a virtual board
    # when no other camera is named)
    telemetry_hz: float | None = None  # telemetry samples per second; None: every loop cycle
    foxglove: int | None = None  # serve a live Foxglove view on this localhost port (0: any)
    teleop: TeleopSetup | None = None  # a host input driving the hand (mode HOST); its frames,
    # goals and latencies go into the episodes (dexlink.teleop)

    def __post_init__(self):
        if self.episodes < 1 or self.duration_s <= 0:
            raise RecordError("a recording needs at least one episode and a positive "
                              "duration (got %d episodes of %g s)" % (self.episodes, self.duration_s))
        if self.telemetry_hz is not None and not self.telemetry_hz > 0:
            raise RecordError("the telemetry rate must be positive (got %g Hz)" % self.telemetry_hz)
        if self.teleop is not None and self.mode != catalog.MODE_HOST:
            raise RecordError("a host input (%s) drives the hand in HOST mode, not %s"
                              % (self.teleop.input, catalog.MODE_NAMES[self.mode]))
        if self.world is not None and self.episodes != 1:
            raise RecordError("a world gives one episode (it ends when the world judges the "
                              "task); record %d worlds, one a run, with different seeds"
                              % self.episodes)

    @property
    def world(self):
        """The virtual board's physics world (board.world, a WorldOptions), or None. With
        one, the cameras are the world's and the episode lasts until it judges the task."""
        return self.board.world


@dataclass(frozen=True)
class RecordProgress:
    """What record_session reports: as each episode starts (starting), then once a second."""

    episode: int  # 1-based
    episodes: int
    path: Path  # the episode's file
    status: str  # the recorder's one-line status (rates, drops, camera health)
    starting: bool = False


@dataclass
class RecordResult:
    directory: Path
    session: Session
    kept: list[dict]  # the index entries of the episodes kept (file, duration_s, messages...)
    camera_problems: dict[str, str]  # camera name -> what went wrong with it
    errors: list[str]  # episodes that could not be finished, and why

    @property
    def ok(self) -> bool:
        return not self.errors


def default_session_dir() -> Path:
    return Path("sessions") / time.strftime("%Y%m%d-%H%M%S")


def open_session(out: Path, task: str) -> Session:
    """The session directory, made if needed; a RecordError when it cannot be."""
    try:
        return Session(out, task)
    except OSError as e:
        raise RecordError("cannot record into %s: %s" % (out, e.strerror or e)) from None
    except ValueError as e:  # a damaged session.json
        raise RecordError(str(e)) from None


class Recording:
    """A recording under way (made by open_recording): the board with its link in the
    options' mode, and a Recorder into the session following the link, cameras running."""

    def __init__(self, options: RecordOptions, directory: Path, session: Session,
                 board: ConnectedBoard, recorder: Recorder, live=None, live_text: str = "",
                 teleop=None):
        self.options, self.directory, self.session = options, directory, session
        self.board, self.recorder = board, recorder
        self.teleop = teleop  # the dexlink.teleop.TeleopSession driving the hand, or None
        self.live = live  # the Foxglove view (dexlink.live.foxglove.FoxgloveView) or None
        self.live_text = live_text  # where it is, to tell the user

    @property
    def link(self) -> Link:
        return self.board.link

    @property
    def virtual(self):
        """The virtual board recorded from (a dexlink.sim.VirtualBoard), None for a real one."""
        return self.board.virtual

    def run_timed(self, progress: Callable[[RecordProgress], None] | None = None) -> None:
        """The options' episodes, each of duration_s, one after the other; in a world, its
        one episode, until the world judges it, marked with the verdict."""
        world = self.virtual.world if self.virtual is not None else None
        if world is not None:
            run_world_episode(self.recorder, world, progress)
        else:
            run_episodes(self.recorder, self.options.episodes, self.options.duration_s,
                         progress)

    def result(self) -> RecordResult:
        """What was kept and what went wrong; waits for the episodes still being finished."""
        r = self.recorder
        r.wait_finished()
        return RecordResult(self.directory, self.session, list(r.finished),
                            dict(r.cameras.problems()), list(r.errors))


@contextlib.contextmanager
def open_recording(options: RecordOptions) -> Iterator[Recording]:
    """A Recording, no episode started yet. On exit the episode under way is kept, the
    cameras stop and the hand goes IDLE; then .result() says what was recorded."""
    directory = options.out or default_session_dir()
    session = open_session(directory, options.task)  # before the board: a bad --out fails at once
    with connect(options.board) as board, \
            telemetry_rate(board.link, options.telemetry_hz) as rate, \
            contextlib.ExitStack() as live_stack:  # every cycle by default
        link = board.link
        recorder = Recorder(session, None, dict(board_metadata(board), task=options.task,
                                                telemetry_hz=rate.hz,
                                                telemetry_decimation=rate.decimation))
        live, live_text = None, ""
        if options.foxglove is not None:
            from dexlink.live.foxglove import open_view
            live, live_text = open_view(board, options.foxglove)
            live_stack.callback(live.close)
            recorder.taps.append(live)
        recorder.attach_cameras(build_cameras(options, board, recorder))
        stop = threading.Event()
        follow_link(link, recorder, stop)
        teleop = None
        if options.teleop is not None:
            from dexlink.teleop import open_teleop
            from dexlink.teleop.recording import RecorderTaps
            teleop = open_teleop(board, options.teleop, taps=RecorderTaps(recorder))
        recorder.start_cameras()
        recorder.cameras.wait_running()
        # Power the hand only once the cameras run: a world's clock starts with torque, and
        # cameras slow to start (a loaded machine) would otherwise cut the episode's start.
        link.set_mode(options.mode)
        try:
            if teleop is not None:
                start_teleop(teleop)
            yield Recording(options, directory, session, board, recorder, live, live_text, teleop)
        except OSError as e:  # an episode could not even start (disk full, directory gone)
            raise RecordError("cannot write %s" % error_text(e) if e.filename else str(e)) from None
        finally:
            if teleop is not None:
                teleop.stop()  # before the hand goes IDLE: no goal after it
            recorder.close(keep=True)
            stop.set()
            link.set_mode(catalog.MODE_IDLE)


def start_teleop(teleop) -> None:
    """Start a host input's session; a listener that cannot open is the user's to fix."""
    try:
        teleop.start()
    except OSError as e:
        raise RecordError(error_text(e)) from None


def record_session(options: RecordOptions,
                   progress: Callable[[RecordProgress], None] | None = None) -> RecordResult:
    """Record options.episodes timed episodes from the board into options.out."""
    with open_recording(options) as rec:
        rec.run_timed(progress)
    return rec.result()


def run_episodes(recorder: Recorder, episodes: int, duration_s: float,
                 progress: Callable[[RecordProgress], None] | None = None) -> None:
    """Episodes of duration_s, one after the other; progress as each starts, then once a
    second. A write failure (disk full) ends the run: the recorder's errors say why."""
    for n in range(1, episodes + 1):
        path = recorder.start_episode()
        if progress:
            progress(RecordProgress(n, episodes, path, recorder.status_line(), starting=True))
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            recorder.check_cameras()
            if progress:
                progress(RecordProgress(n, episodes, path, recorder.status_line()))
            if recorder.write_error():
                return
        recorder.stop_episode(keep=True)


WORLD_START_S = 30.0  # how long a world may wait for the board to turn torque on


def run_world_episode(recorder: Recorder, world,
                      progress: Callable[[RecordProgress], None] | None = None) -> None:
    """One episode, until the world (a dexlink.world.World) judges its task (at the
    latest at the task's time limit), marked with the world's verdict as a key marks
    one. A world that never decides (the board never powered the hand) leaves it
    unmarked."""
    path = recorder.start_episode()
    if progress:
        progress(RecordProgress(1, 1, path, recorder.status_line(), starting=True))
    # The world's clock starts with torque: its time limit plus the wait for the board.
    end = time.monotonic() + world.task.time_limit_s + WORLD_START_S
    next_report = time.monotonic() + 1.0
    while world.judge() is None and time.monotonic() < end:
        time.sleep(0.05)
        if time.monotonic() >= next_report:
            next_report += 1.0
            recorder.check_cameras()
            if progress:
                progress(RecordProgress(1, 1, path, recorder.status_line()))
            if recorder.write_error():
                return
    verdict = world.judge()
    if verdict is not None:
        recorder.mark(verdict == "success")
        recorder.event("world", "%s: %s" % (verdict, world.task.reason))
    recorder.stop_episode(keep=True)


def board_metadata(board: ConnectedBoard) -> dict:
    """What the episode files say about the rig: hand, calibration in force, firmware, board."""
    link = board.link
    b = link.board
    meta = {"firmware_version": "%d.%d.%d" % (b.fw_major, b.fw_minor, b.fw_patch),
            "protocol": "%d.%d" % (b.proto_major, b.proto_minor), "board": b.text,
            "n_joints": b.n_joints, "loop_hz": b.loop_hz, "config_crc": "%08x" % b.config_crc,
            "joint_names": ",".join(board.joint_names)}
    if board.hand is not None:
        meta["hand_file"] = str(board.hand)
        meta["hand"] = board.hand.read_text()
    calibration = []
    for j in range(b.n_joints):
        try:
            calibration.append(dict(link.get_joint(j).fields))
        except Exception as e:  # an old firmware without GET_JOINT: say so, record anyway
            calibration = "unavailable: %s" % e
            break
    meta["calibration"] = calibration
    return meta


def build_cameras(options: RecordOptions, board: ConnectedBoard, recorder: Recorder):
    """The options' cameras (a CameraSet); simulated ones render from the recorder's joints."""
    from dexlink.capture import CameraSet, OpenCVTactileCamera, sim_cameras
    from dexlink.capture.realsense import RealSenseCamera

    cams = []
    for spec in options.tactile:
        try:
            cams.append(OpenCVTactileCamera(spec.name, spec.device, spec.preset))
        except ValueError as e:
            raise RecordError(str(e)) from None
    if options.realsense is not None:
        cams.append(RealSenseCamera(serial=options.realsense or None))
    world = board.virtual.world if board.virtual is not None else None
    if world is not None and (options.sim_cameras or not cams):
        from dexlink.world.sensors import WorldRGBDCamera, WorldTactileCamera

        cams += [WorldTactileCamera(world, f) for f in world.tactile_fingers]
        cams.append(WorldRGBDCamera(world))
    elif options.sim_cameras or (options.board.virtual and not cams):
        tips = fingertips(board.hand, board.link.board.n_joints)
        cams += list(sim_cameras(recorder.joints, tips))
    try:
        return CameraSet(cams)
    except ValueError as e:
        raise RecordError(str(e)) from None


def fingertips(hand: Path | None, n_joints: int):
    """Fingertips of the hand file (joints grouped by finger), else an even split."""
    from dexlink.capture.sim import default_fingertips, fingertips_from_hand
    from dexlink.hwconfig import load_hand

    if hand is not None:
        tips = fingertips_from_hand(load_hand(hand))
        if tips and max(max(t.joints) for t in tips) < n_joints:
            return tips
    return default_fingertips(n_joints)
