"""Link: one session with one board, wired from the package's parts (see __init__)."""
from __future__ import annotations

import threading
import time

from dexlink.clock import BoardClock
from dexproto import catalog
from dexproto.stream import Message, StreamDecoder, make

from .errors import LinkError
from .faults import fault_text, fault_where
from .handshake import Handshake, describe_board
from .keeper import Applied, Keeper
from .points import POINTS_MINOR, PointSender, check_board, check_goals, check_step, to_cdeg
from .requests import Requests, Sender
from .settings import DEFAULT_BAUD, LinkSettings
from .stats import LinkStats
from .subscriptions import Subscription, Subscriptions
from .timesync import SyncProbes
from .transport import Transport


def _setting(name: str, doc: str) -> property:
    """A Link attribute that is one of its settings, which the parts read when they act."""
    return property(lambda link: getattr(link.settings, name),
                    lambda link, value: setattr(link.settings, name, value), doc=doc)


class Link:
    """A session with one board over a pyserial URL. See the package docstring."""

    timeout = _setting("timeout", "seconds one request attempt waits for its answer")
    retries = _setting("retries", "request attempts after the first, on silence")
    handshake_timeout = _setting("handshake_timeout", "seconds HELLO is repeated")
    busy_s = _setting("busy_s", "seconds a request keeps retrying while the board says busy")
    reconnect_enabled = _setting("reconnect", "reopen a port that went away")
    heartbeat_s = _setting("heartbeat_s", "HEARTBEAT period in HOST mode")
    sync_s = _setting("sync_s", "TIME_SYNC probe period")
    silence_s = _setting("silence_s", "no frame for this long: a `silent` event")

    def __init__(self, url: str, baud: int = DEFAULT_BAUD, *, timeout: float = 0.3,
                 retries: int = 3, handshake_timeout: float = 2.0, reconnect: bool = True,
                 heartbeat_s: float = 0.05, sync_s: float = 0.05, silence_s: float = 1.0,
                 clock_period: int | None = None, busy_s: float = 3.0):
        self.settings = LinkSettings(url, baud, timeout, retries, handshake_timeout, reconnect,
                                     heartbeat_s, sync_s, silence_s, busy_s)
        self.clock = BoardClock(clock_period)
        self.decoder = StreamDecoder()  # this connection's; a new one at every reconnection
        self.stats = LinkStats()
        self.board: Message | None = None  # the last HELLO_REPLY
        # The hand's names (use_names): every FAULT gets .where, the joint or motor by name.
        self.joint_names: list[str] = []
        self.motor_names: list[str] = []
        self._up = threading.Event()  # the port is open and handshaken
        self._ended = threading.Event()  # closed (or gone, without reconnect): for good
        self._threads: list[threading.Thread] = []
        self._applied = Applied()
        self._transport = Transport(url, baud)
        self._sender = Sender(self._transport, self.stats)
        self._requests = Requests(self.settings, self._sender, self.stats, self._up, self._ended)
        self._handshaker = Handshake(self.settings, self._transport, self._requests, self._ended)
        self._subscriptions = Subscriptions()
        self._points = PointSender()
        self._probes = SyncProbes(self.clock)
        self._keeper = Keeper(
            settings=self.settings, transport=self._transport, requests=self._requests,
            probes=self._probes, stats=self.stats, subscriptions=self._subscriptions,
            applied=self._applied, up=self._up, ended=self._ended,
            connect=self._connect, handshake=self._handshake)

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def baud(self) -> int:
        return self.settings.baud

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> Message:
        """Open the port and handshake; returns the board's HELLO_REPLY."""
        self._connect()
        self._threads.append(self._transport.start_reader(self._received, self._ended))
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise
        self._up.set()
        self._threads.append(self._keeper.start())
        self._subscriptions.event("connected", self.describe_board())
        return self.board

    def close(self) -> None:
        """End both threads (also mid-reconnection), then close the port."""
        self._ended.set()
        self._up.clear()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads.clear()
        self._transport.close()

    def __enter__(self) -> "Link":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """The port is open and handshaken."""
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    @property
    def port_open(self) -> bool:
        """The port is open (handshaken or not: see connected)."""
        return self._transport.is_open

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The reader and keeper threads while open (close() ends them)."""
        return tuple(self._threads)

    def _connect(self) -> None:
        """A fresh decoder and counts for a new connection, then open the port."""
        self.stats.new_connection(self.decoder)
        self.decoder = StreamDecoder()
        self._handshaker.new_connection()
        self._transport.open()

    def _handshake(self) -> Message:
        self.board = self._handshaker.run(self.decoder)
        return self.board

    # -- what the session set, and the board -----------------------------------------
    @property
    def mode(self) -> int | None:
        """The mode this session asked for."""
        return self._applied.mode

    @property
    def config(self) -> dict | None:
        """The SET_CONFIG fields this session applied."""
        return self._applied.config

    @property
    def joints(self) -> dict[int, dict]:
        """The SET_JOINT fields this session applied, by joint."""
        return self._applied.joints

    @property
    def last_telemetry(self) -> Message | None:
        return self._keeper.last_telemetry

    def use_names(self, joints, motors=None) -> None:
        """Name FAULTs' joints: exoskeleton joint names, and motor names (a coupled hand's
        [[motors]]; the joints' when None, as a hand driven joint for joint)."""
        self.joint_names = list(joints)
        self.motor_names = list(self.joint_names if motors is None else motors)

    def describe_board(self) -> str:
        return describe_board(self.board)

    # -- requests and commands -------------------------------------------------------
    def send(self, msg: Message, on_seq=None, framed: list | None = None) -> int:
        """Send a message with the next sequence number (returned), not waiting; see
        Sender.send for on_seq and framed. Raises LinkDown if the port is not open."""
        return self._sender.send(msg, on_seq, framed)

    def request(self, msg: Message, timeout: float | None = None, retries: int | None = None,
                match=None, wait_up: bool = True) -> Message:
        """Send a command and wait for its ACK or reply; see Requests.request."""
        return self._requests.request(msg, timeout, retries, match, wait_up)

    def set_mode(self, mode: int) -> Message:
        ack = self.request(make("SET_MODE", mode=mode))
        self._applied.mode = mode
        return ack

    def set_config(self, loop_hz: int, telemetry_decimation: int, watchdog_ms: int,
                   watchdog_action: int = catalog.WATCHDOG_HOLD) -> Message:
        fields = dict(loop_hz=loop_hz, telemetry_decimation=telemetry_decimation,
                      watchdog_ms=watchdog_ms, watchdog_action=watchdog_action)
        ack = self.request(make("SET_CONFIG", **fields))
        self._applied.config = fields
        return ack

    def get_config(self) -> Message:
        return self.request(make("GET_CONFIG"))

    def set_joint(self, joint: int, **fields) -> Message:
        ack = self.request(make("SET_JOINT", joint=joint, **fields))
        self._applied.joints[joint] = dict(joint=joint, **fields)
        return ack

    def get_joint(self, joint: int) -> Message:
        return self.request(make("GET_JOINT", joint=joint), match=lambda m: m.joint == joint)

    def get_stats(self) -> Message:
        return self.request(make("GET_STATS"))

    def estop(self) -> None:
        """Torque off now: sent three times, no waiting (an e-stop must not stall on a lossy line)."""
        self._applied.mode = catalog.MODE_IDLE
        for _ in range(3):
            self.send(make("ESTOP"))

    def send_targets(self, targets_cdeg) -> int:
        """Stream HOST-mode joint targets (one per joint, cdeg); fire and forget."""
        return self.send(make("TARGETS", items=[(int(t),) for t in targets_cdeg]))

    def send_points(self, board_t0_us: int, step_us: int, goals_deg, replace: bool = True) -> int:
        """Send an action chunk as timed points (TARGET_POINTS; HOST mode; fire and forget):
        goals_deg[i] (degrees, one per joint) is the goal at board time board_t0_us + i *
        step_us (unwrapped µs, see board_time_us). Points already past are dropped (counted
        in stats_snapshot()["points_dropped"]); the rest go in as few frames as fit, the first
        replacing the board's queued points from its time on (replace=False: appended).
        Returns how many points were sent. ValueError for a NaN or infinite goal (naming its
        point and joint), a bad shape or step; LinkError for a board older than protocol 1.2
        or a clock not synchronised yet."""
        check_board(self.board, self.url)
        goals = check_goals(goals_deg, self.board.n_joints, self.joint_names)
        step = check_step(step_us, len(goals))
        ranges = {j: (f["min_cdeg"], f["max_cdeg"]) for j, f in self._applied.joints.items()
                  if "min_cdeg" in f and "max_cdeg" in f}
        msgs = self._points.messages(int(board_t0_us), step, to_cdeg(goals, ranges),
                                     self.board_time_us(), self.clock.unwrapper.period, replace)
        for m in msgs:
            self.send(m)
        return sum(len(m.items) for m in msgs) // self.board.n_joints

    @property
    def takes_points(self) -> bool:
        """The board plays timed points (send_points): its protocol is 1.2 or later."""
        return self.board is not None and self.board.proto_minor >= POINTS_MINOR

    def board_time_us(self, host_ns: int | None = None) -> int:
        """The board's clock (unwrapped µs, as send_points takes it) at a host
        time.monotonic_ns() instant, now when None: e.g. an observation's capture time.
        LinkError until the clock is synchronised (the first TIME_SYNC reply)."""
        if not self.clock.synced:
            raise LinkError("%s: the board clock is not synchronised yet (no TIME_SYNC reply); "
                            "wait a moment after open()" % self.url)
        return int(round(self.clock.board_us_at(time.monotonic_ns() if host_ns is None
                                                else host_ns)))

    def time_sync(self) -> None:
        """Send one TIME_SYNC probe; the reply updates self.clock when it arrives."""
        self._probes.probe(self._sender.send)

    # -- subscribers -----------------------------------------------------------------
    def subscribe(self, *names: str, maxsize: int = 10000) -> Subscription:
        """A queue of the messages named (TELEMETRY, FAULT, LOG, ...) and/or EVENT."""
        return self._subscriptions.subscribe(*names, maxsize=maxsize)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.unsubscribe(sub)

    # -- what arrives (on the reader thread) -----------------------------------------
    def _received(self, data: bytes, now_ns: int) -> None:
        if not self._up.is_set():
            self._handshaker.note(data)
        self.stats.bytes += len(data)
        for m in self.decoder.feed(data):
            m.host_ns = now_ns
            self._dispatch(m)

    def _dispatch(self, m: Message) -> None:
        self._keeper.heard(m)  # first: a reboot it shows is reported before the message
        self.stats.count_frame(m)
        if m.name == "FAULT":
            m.where = fault_where(m, self.joint_names, self.motor_names)
            m.description = fault_text(m, self.joint_names, self.motor_names)
        self._requests.offer(m)
        self._subscriptions.publish(m)

    # -- statistics ------------------------------------------------------------------
    def stats_snapshot(self) -> dict:
        """Everything a dashboard shows about the link, as plain numbers."""
        return {**self.stats.snapshot(self.decoder, self.clock, self.connected),
                **self._points.counts()}
