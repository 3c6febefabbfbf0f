"""The host's link to a board: transport, decoding, requests, heartbeat, clock, statistics.

    with Link("/dev/ttyACM0") as link:          # or "socket://host:port", "loop://"
        print(link.board)                      # HELLO_REPLY, checked
        telemetry = link.subscribe("TELEMETRY")
        link.set_mode(catalog.MODE_TELEOP)
        msg = telemetry.get(timeout=1)         # a dexproto.stream.Message
        msg.host_ns                            # host monotonic ns at arrival
        link.clock.to_host_ns(msg.board_us, msg.host_ns)   # ... at sampling

Threads: a reader decodes frames and hands them to waiting requests and subscribers;
a keeper sends heartbeats (HOST mode), TIME_SYNC probes, and reconnects a board that
went away, re-handshaking and re-applying the session's config, joints and mode.
"""
from __future__ import annotations

import errno
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import serial

from dexproto import catalog
from dexproto.stream import Message, ProtocolError, StreamDecoder, check_hello, encode, make

from dexlink.clock import BoardClock

DEFAULT_BAUD = 1_000_000
EVENT = "EVENT"  # subscribe to this name for LinkEvents
CTRL_C = b"\x03"
QUIET_S = 0.3  # no frame for this long: the board may be rebooting ...
QUIET_PROBE_S = 1.0  # ... so probe it only this often
SYNC_PROBES_KEPT = 64  # TIME_SYNC probes awaiting their reply (older ones were lost)

FLASH_HINT = ("flash the firmware with `dexlink flash --port %s --hand HAND.toml --board BOARD` "
              "(or try `dexlink session --sim` for a virtual board)")

# The reply a request waits for, besides ACK/NACK.
REPLY_OF = {"HELLO": "HELLO_REPLY", "GET_CONFIG": "CONFIG", "GET_JOINT": "JOINT_CONFIG",
            "GET_STATS": "STATS", "TIME_SYNC": "TIME_SYNC_REPLY"}


# FAULT.joint is a motor index for these codes (servo faults), an exoskeleton joint's otherwise.
MOTOR_FAULTS = frozenset((catalog.FAULT_SERVO_TIMEOUT, catalog.FAULT_SERVO_CHECKSUM,
                          catalog.FAULT_SERVO_ERROR))


def fault_where(m: Message, joints=(), motors=()) -> str:
    """What a FAULT is about, by name: "joint index_mcp (3)", "motor thumb_ip (5)" (the
    hand's names; the number alone when the name is not known), or "" for the board."""
    i = m.joint
    if i == catalog.NO_JOINT:
        return ""
    kind, names = ("motor", motors) if m.code in MOTOR_FAULTS else ("joint", joints)
    return "%s %s (%d)" % (kind, names[i], i) if i < len(names) else "%s %d" % (kind, i)


def fault_text(m: Message, joints=(), motors=()) -> str:
    """A FAULT in words: "FAULT magnet at joint index_mcp (3), detail 1"."""
    code = m.code
    name = catalog.FAULT_NAMES[code] if code < len(catalog.FAULT_NAMES) else "fault %d" % code
    where = fault_where(m, joints, motors)
    return "FAULT %s%s, detail %d" % (name, " at " + where if where else "", m.detail)


class LinkError(Exception):
    """Something the user can act on: the message says what and how."""


class HandshakeError(LinkError):
    pass


class RequestTimeout(LinkError):
    pass


class LinkDown(LinkError):
    pass


class NackError(LinkError):
    """The board refused a command; .error is the catalog's ERR_* code, .field the field."""

    def __init__(self, request: Message, error: int, field_index: int):
        self.request, self.error, self.field_index = request, error, field_index
        fields = request.spec.head_fields or request.spec.item_fields
        self.field = fields[field_index] if field_index < len(fields) else None
        reason = catalog.ERR_NAMES[error] if error < len(catalog.ERR_NAMES) else "error %d" % error
        where = " (field %s)" % self.field if self.field else ""
        super().__init__("the board refused %s: %s%s" % (request.name, reason, where))


@dataclass
class LinkEvent:
    """What happened to the link: connected, disconnected (the port went away), board_reset
    (the board rebooted behind an open port), reconnected (handshaken again, session
    re-applied), reconnect_failed, silent (no frame for silence_s), resumed."""

    kind: str
    detail: str = ""
    host_ns: int = field(default_factory=time.monotonic_ns)
    name: str = EVENT  # so a subscriber's queue can hold messages and events alike


class Subscription:
    """A bounded queue of messages (and events); when full the oldest is dropped and counted."""

    def __init__(self, names: frozenset, maxsize: int):
        self.names = names
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.overflows = 0

    def put(self, item) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.overflows += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None):
        """The next item, or None after timeout seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out


class _Pending:
    """A request waiting for its ACK/NACK or reply."""

    def __init__(self, msg: Message, reply: str | None, match):
        self.msg = msg
        self.reply = reply
        self.match = match
        self.seqs: set[int] = set()
        self.done = threading.Event()
        self.result: Message | None = None
        self.sent_ns = 0

    def offer(self, m: Message) -> bool:
        if m.name in ("ACK", "NACK"):
            hit = m.acked_type == self.msg.spec.type and m.acked_seq in self.seqs
        else:
            hit = m.name == self.reply and (self.match is None or self.match(m))
        if hit:
            self.result = m
            self.done.set()
        return hit


class LinkStats:
    """Counters and live rates. Rates are over the last second or so."""

    def __init__(self):
        self.frames = 0
        self.bytes = 0
        self.by_type: dict[str, int] = {}
        self.seq_gaps = 0
        self.lost_frames = 0
        self.tx_frames = 0
        self.tx_bytes = 0
        self.retries = 0
        self.timeouts = 0
        self.nacks = 0
        self.disconnects = 0
        self.reconnects = 0
        self.rtt_ns: deque[int] = deque(maxlen=200)  # request -> ACK round trips
        self.drops_before: dict[str, int] = {}  # decoder drops of earlier connections
        self._history: deque[tuple[int, int, int]] = deque()  # (ns, frames, bytes)
        self._last_seq: int | None = None

    def count_frame(self, m: Message) -> None:
        self.frames += 1
        self.by_type[m.name] = self.by_type.get(m.name, 0) + 1
        if self._last_seq is not None:
            gap = (m.seq - self._last_seq - 1) & 0xFFFF
            if gap >= 0x8000:
                pass  # backwards: the board restarted its numbering (a reboot), nothing lost
            elif gap:
                self.seq_gaps += 1
                self.lost_frames += gap
        self._last_seq = m.seq

    def forget_seq(self) -> None:
        """A new connection: the board's sequence numbers start over."""
        self._last_seq = None

    def rates(self, now_ns: int) -> tuple[float, float]:
        h = self._history
        h.append((now_ns, self.frames, self.bytes))
        while len(h) > 2 and now_ns - h[1][0] >= 1_000_000_000:
            h.popleft()
        t0, f0, b0 = h[0]
        dt = (now_ns - t0) / 1e9
        if dt <= 0:
            return 0.0, 0.0
        return (self.frames - f0) / dt, (self.bytes - b0) / dt


def _open_problem(e: Exception) -> str:
    """Why a port did not open, in words a user can act on."""
    code = getattr(e, "errno", None)
    text = str(e)
    if code == errno.ENOENT or "No such file" in text:
        return "no such port (is the board plugged in? `dexlink ports` lists them)"
    if code == errno.EACCES or "Permission denied" in text:
        return "permission denied (`dexlink doctor` says how to get access)"
    if code in (errno.EBUSY, errno.EAGAIN) or "Could not exclusively lock" in text or "busy" in text:
        return "the port is busy: another program (a terminal, mpremote, a session) has it open"
    return text


class Link:
    """A session with one board over a pyserial URL. See the module docstring."""

    def __init__(self, url: str, baud: int = DEFAULT_BAUD, *, timeout: float = 0.3,
                 retries: int = 3, handshake_timeout: float = 2.0, reconnect: bool = True,
                 heartbeat_s: float = 0.05, sync_s: float = 0.05, silence_s: float = 1.0,
                 clock_period: int | None = None, busy_s: float = 3.0):
        self.url, self.baud = url, baud
        self.timeout, self.retries = timeout, retries
        self.handshake_timeout = handshake_timeout
        self.busy_s = busy_s  # how long a request keeps retrying while the board says busy
        self.reconnect_enabled = reconnect
        self.heartbeat_s, self.sync_s, self.silence_s = heartbeat_s, sync_s, silence_s
        self.clock = BoardClock(clock_period)
        self.decoder = StreamDecoder()
        self.stats = LinkStats()
        self.board: Message | None = None  # the last HELLO_REPLY
        self.mode: int | None = None  # the mode this session asked for
        self.config: dict | None = None  # the SET_CONFIG fields this session applied
        self.joints: dict[int, dict] = {}  # SET_JOINT fields this session applied
        self.last_telemetry: Message | None = None
        # The board's cycle count at the last re-handshake: telemetry below it means the
        # board rebooted again, even before this session's first telemetry came.
        self._cycle_floor: int | None = None
        # The hand's names (use_names): every FAULT gets .where, the joint or motor by name.
        self.joint_names: list[str] = []
        self.motor_names: list[str] = []
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._subs: list[Subscription] = []
        self._subs_lock = threading.Lock()
        self._seq = 0
        self._sync_token = 0
        self._sync_sent: dict[int, int] = {}  # token -> send instant, oldest first
        self._sync_lock = threading.Lock()  # the keeper adds and evicts, the reader takes
        self._last_feed_ns = 0  # the last TARGETS or HEARTBEAT: what feeds the watchdog
        self._last_rx_ns = 0
        self._silent = False
        self._up = threading.Event()  # the port is open and handshaken
        self._lost = threading.Event()  # the reader saw the port fail
        self._stop = threading.Event()
        self._first_bytes = bytearray()  # what arrived during the handshake, for errors
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> Message:
        """Open the port and handshake; returns the board's HELLO_REPLY."""
        self._open_port()
        self._start_thread(self._read_loop, "dexlink-reader")
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise
        self._up.set()
        self._start_thread(self._keep_loop, "dexlink-keeper")
        self._event("connected", self.describe_board())
        return self.board

    def close(self) -> None:
        self._stop.set()
        self._up.clear()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads.clear()
        self._close_port()

    def __enter__(self) -> "Link":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def _start_thread(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _open_port(self) -> None:
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.05,
                                         write_timeout=2, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError("cannot open %s: %s" % (self.url, _open_problem(e))) from None
        for reason, n in self.decoder.drops.items():  # keep the counts across reconnections
            self.stats.drops_before[reason] = self.stats.drops_before.get(reason, 0) + n
        self.decoder = StreamDecoder()
        self.stats.forget_seq()
        self._first_bytes.clear()
        self._lost.clear()
        self.stats.rates(time.monotonic_ns())  # a starting point for the rates
        self._port = port

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def use_names(self, joints, motors=None) -> None:
        """Name FAULTs' joints: exoskeleton joint names, and motor names (a coupled hand's
        [[motors]]; the joints' when None, as a hand driven joint for joint)."""
        self.joint_names = list(joints)
        self.motor_names = list(self.joint_names if motors is None else motors)

    def describe_board(self) -> str:
        b = self.board
        if b is None:
            return "no board"
        return "%s: firmware %d.%d.%d, protocol %d.%d, %d joints at %d Hz%s" % (
            b.text or "board", b.fw_major, b.fw_minor, b.fw_patch, b.proto_major, b.proto_minor,
            b.n_joints, b.loop_hz, " (virtual)" if b.capabilities & catalog.CAP_VIRTUAL else "")

    # -- handshake -------------------------------------------------------------------
    def _handshake(self) -> None:
        hello = make("HELLO", proto_major=catalog.PROTOCOL_MAJOR, proto_minor=catalog.PROTOCOL_MINOR)
        # A lone delimiter ends whatever half frame the board may hold from before.
        self._write_raw(b"\x00")
        deadline = time.monotonic() + self.handshake_timeout
        reply = None
        while reply is None and time.monotonic() < deadline and not self._stop.is_set():
            try:
                reply = self._transact(hello, timeout=min(0.3, max(0.05, deadline - time.monotonic())))
            except NackError as e:
                if e.error == catalog.ERR_VERSION:
                    raise HandshakeError(
                        "%s: the board refused protocol %d.%d (version mismatch); %s"
                        % (self.url, catalog.PROTOCOL_MAJOR, catalog.PROTOCOL_MINOR, FLASH_HINT % self.url)) from None
                raise HandshakeError("%s: the board refused HELLO: %s" % (self.url, e)) from None
            except RequestTimeout:
                if not self._port_alive():
                    break
        if reply is None:
            raise HandshakeError(self._silence_report())
        try:
            check_hello(reply)
        except ProtocolError as e:
            raise HandshakeError("%s: %s" % (self.url, e)) from None  # names `dexlink flash`
        self.board = reply

    def _silence_report(self) -> str:
        seen = bytes(self._first_bytes[:80])
        if not seen:
            return ("no answer from %s at %d baud within %.1f s: no dexlink firmware is running "
                    "there; %s" % (self.url, self.baud, self.handshake_timeout, FLASH_HINT % self.url))
        text = seen.decode("ascii", "replace")
        if ">>>" in text or "MicroPython" in text:
            what = "a MicroPython REPL, not dexlink firmware"
        elif self.decoder.dropped:
            what = "%d bad frames (%s): wrong baud rate, or not dexlink firmware" % (
                self.decoder.dropped,
                ", ".join("%s %d" % kv for kv in self.decoder.drops.items() if kv[1]))
        else:
            what = "bytes that are not dexlink frames"
        return "%s answered with %s: %r; %s" % (self.url, what, seen, FLASH_HINT % self.url)

    def _port_alive(self) -> bool:
        return self._port is not None and not self._lost.is_set()

    # -- writing ---------------------------------------------------------------------
    def _write_raw(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise LinkDown("%s is not connected" % self.url)
        try:
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as e:
            self._lost.set()
            raise LinkDown("%s: write failed: %s" % (self.url, e)) from None

    def send(self, msg: Message, on_seq=None, framed: list | None = None) -> int:
        """Send a message with the next sequence number (returned). Thread-safe.

        on_seq(seq), if given, runs under the write lock right before the write, so whoever
        waits for the answer is registered before the answer can arrive. framed, if given,
        keeps [seq, frame] of the first send: later sends with it repeat that very frame
        (a retry the board recognises and does not apply twice).
        """
        with self._write_lock:
            if framed:
                seq, frame = framed
            else:
                seq, frame = self._ctrl_c_free(msg)
                if framed is not None:
                    framed[:] = [seq, frame]
            port = self._port
            if port is None:
                raise LinkDown("%s is not connected" % self.url)
            if on_seq is not None:
                on_seq(seq)
            try:
                port.write(frame)
            except (serial.SerialException, OSError) as e:
                self._lost.set()
                raise LinkDown("%s: write failed: %s" % (self.url, e)) from None
            self.stats.tx_frames += 1
            self.stats.tx_bytes += len(frame)
            if msg.name in ("TARGETS", "HEARTBEAT"):
                self._last_feed_ns = time.monotonic_ns()
        return seq

    def _ctrl_c_free(self, msg: Message) -> tuple[int, bytes]:
        """The next sequence number whose frame has no 0x03 byte, and that frame.

        A board that is booting (or at its REPL) takes 0x03 as Ctrl-C until its firmware
        claims the port: a frame arriving then would kill the boot. The sequence number
        is ours to choose, and it changes the CRC and COBS codes; after a few tries the frame goes as is
        (the body itself may hold a 0x03).
        """
        first = self._seq
        for k in range(16):
            seq = (first + 257 * k) & 0xFFFF  # both bytes change: a zero byte moves COBS codes
            frame = encode(msg, seq)
            if CTRL_C not in frame:
                break
        else:  # SET_MODE's type byte is 0x03 itself, for one
            seq = first
            frame = encode(msg, seq)
        self._seq = (seq + 1) & 0xFFFF
        return seq, frame

    def _transact(self, msg: Message, timeout: float, match=None,
                  framed: list | None = None) -> Message:
        """One attempt: send, wait for ACK/NACK or the reply. Raises NackError/RequestTimeout.

        framed: see send(); the same list across attempts makes them one command."""
        p = _Pending(msg, REPLY_OF.get(msg.name), match)
        with self._pending_lock:
            self._pending.append(p)

        def register(seq):
            p.seqs.add(seq)
            p.sent_ns = time.monotonic_ns()
        try:
            self.send(msg, register, framed)
            if not p.done.wait(timeout):
                raise RequestTimeout("%s: no answer to %s within %.0f ms" % (self.url, msg.name, timeout * 1e3))
        finally:
            with self._pending_lock:
                self._pending.remove(p)
        r = p.result
        self.stats.rtt_ns.append(r.host_ns - p.sent_ns)
        if r.name == "NACK":
            self.stats.nacks += 1
            raise NackError(msg, r.error, r.field)
        return r

    def request(self, msg: Message, timeout: float | None = None, retries: int | None = None,
                match=None, wait_up: bool = True) -> Message:
        """Send a command and wait for its ACK or reply, retrying on silence.

        Raises NackError with the board's reason, or RequestTimeout after the last retry.
        A retry after silence repeats the first frame, sequence number included: if only
        the answer was lost, the board answers again without applying the command twice.
        A retry after NACK(busy), or after a reconnection (a new session), is a new frame.
        """
        timeout = self.timeout if timeout is None else timeout
        framed: list = []
        session = self.stats.reconnects
        retries = self.retries if retries is None else retries
        down = None
        busy_until = time.monotonic() + self.busy_s
        attempt = 0
        while attempt <= retries:
            if self._stop.is_set():  # closed: nobody will wait for the answer
                raise LinkDown("%s: the link is closed; %s not sent" % (self.url, msg.name))
            if attempt:
                self.stats.retries += 1
                if wait_up and not self._up.is_set() and not self._up.wait(timeout):
                    attempt += 1
                    continue
            if self.stats.reconnects != session:
                framed, session = [], self.stats.reconnects
            try:
                return self._transact(msg, timeout, match, framed)
            except RequestTimeout:
                self.stats.timeouts += 1
            except LinkDown as e:
                if not self.reconnect_enabled:
                    raise
                down = e
            except NackError as e:
                # "busy, try again later" (e.g. servo positions not read back yet): the
                # board asked for it, so it does not count against the retries
                if e.error != catalog.ERR_BUSY or time.monotonic() > busy_until:
                    raise
                framed = []
                time.sleep(0.02)
                continue
            attempt += 1
        if down is not None and not self._up.is_set():
            raise LinkDown("%s: the board is gone (%s); %s not sent" % (self.url, down, msg.name))
        raise RequestTimeout("%s: no answer to %s after %d tries of %.0f ms" % (
            self.url, msg.name, retries + 1, timeout * 1e3))

    # -- commands --------------------------------------------------------------------
    def set_mode(self, mode: int) -> Message:
        ack = self.request(make("SET_MODE", mode=mode))
        self.mode = mode
        return ack

    def set_config(self, loop_hz: int, telemetry_decimation: int, watchdog_ms: int,
                   watchdog_action: int = catalog.WATCHDOG_HOLD) -> Message:
        fields = dict(loop_hz=loop_hz, telemetry_decimation=telemetry_decimation,
                      watchdog_ms=watchdog_ms, watchdog_action=watchdog_action)
        ack = self.request(make("SET_CONFIG", **fields))
        self.config = fields
        return ack

    def get_config(self) -> Message:
        return self.request(make("GET_CONFIG"))

    def set_joint(self, joint: int, **fields) -> Message:
        ack = self.request(make("SET_JOINT", joint=joint, **fields))
        self.joints[joint] = dict(joint=joint, **fields)
        return ack

    def get_joint(self, joint: int) -> Message:
        return self.request(make("GET_JOINT", joint=joint), match=lambda m: m.joint == joint)

    def get_stats(self) -> Message:
        return self.request(make("GET_STATS"))

    def estop(self) -> None:
        """Torque off now: sent three times, no waiting (an e-stop must not stall on a lossy line)."""
        self.mode = catalog.MODE_IDLE
        for _ in range(3):
            self.send(make("ESTOP"))

    def send_targets(self, targets_cdeg) -> int:
        """Stream HOST-mode joint targets (one per joint, cdeg); fire and forget."""
        return self.send(make("TARGETS", items=[(int(t),) for t in targets_cdeg]))

    def time_sync(self) -> None:
        """Send one TIME_SYNC probe; the reply updates self.clock when it arrives."""
        token = (self._sync_token + 1) & 0xFFFFFFFF
        while CTRL_C in token.to_bytes(4, "little"):  # see _ctrl_c_free
            token = (token + 1) & 0xFFFFFFFF
        self._sync_token = token
        with self._sync_lock:
            if len(self._sync_sent) >= SYNC_PROBES_KEPT:  # the oldest was never answered
                del self._sync_sent[next(iter(self._sync_sent))]

        def stamp(seq):  # the send instant, taken as late as possible
            with self._sync_lock:
                self._sync_sent[token] = time.monotonic_ns()
        try:
            self.send(make("TIME_SYNC", token=token), stamp)
        except LinkDown:
            pass

    # -- subscribers -----------------------------------------------------------------
    def subscribe(self, *names: str, maxsize: int = 10000) -> Subscription:
        """A queue of the messages named (TELEMETRY, FAULT, LOG, ...) and/or EVENT."""
        for n in names:
            if n != EVENT and n not in catalog.BY_NAME:
                raise ValueError("unknown message name %r" % n)
        sub = Subscription(frozenset(names), maxsize)
        with self._subs_lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _publish(self, item) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        for s in subs:
            if item.name in s.names:
                s.put(item)

    def _event(self, kind: str, detail: str = "") -> None:
        self._publish(LinkEvent(kind, detail))

    # -- reading ---------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._stop.is_set():
            port = self._port
            if port is None or self._lost.is_set():
                time.sleep(0.01)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError):
                # TypeError/AttributeError: pyserial racing a close from another thread
                self._lost.set()
                continue
            if data:
                self._take(data, time.monotonic_ns())

    def _take(self, data: bytes, now_ns: int) -> None:
        if not self._up.is_set() and len(self._first_bytes) < 256:
            self._first_bytes += data[:256]
        self.stats.bytes += len(data)
        for m in self.decoder.feed(data):
            m.host_ns = now_ns
            self._dispatch(m)

    def _dispatch(self, m: Message) -> None:
        name = m.name
        self._last_rx_ns = m.host_ns  # good frames only: a REPL's echo is not a live board
        if name == "TELEMETRY":
            last = self.last_telemetry
            floor = last.cycle if last is not None else self._cycle_floor
            if floor is not None and m.cycle < floor and self._up.is_set():
                self._board_reset()
            self.last_telemetry = m
        self.stats.count_frame(m)
        if name == "FAULT":
            m.where = fault_where(m, self.joint_names, self.motor_names)
            m.description = fault_text(m, self.joint_names, self.motor_names)
        if name == "TIME_SYNC_REPLY":
            with self._sync_lock:
                sent = self._sync_sent.pop(m.token, None)
            if sent is not None:
                self.clock.add_exchange(sent, m.rx_us, m.tx_us, m.host_ns)
        with self._pending_lock:
            for p in self._pending:
                if p.offer(m):
                    break
        self._publish(m)

    def _board_reset(self) -> None:
        """The board's cycle counter went back: it rebooted behind an open port."""
        self.clock.reset()  # its clock started over too: the old mapping would misdate
        self._event("board_reset", "telemetry cycle counter restarted")
        self.stats.forget_seq()  # its sequence numbers started over too
        self._up.clear()  # the keeper re-handshakes and re-applies the session

    # -- keeping the link ------------------------------------------------------------
    def _keep_loop(self) -> None:
        next_sync = 0.0
        while not self._stop.wait(0.005):
            if self._lost.is_set():
                self._recover()
                continue
            if not self._up.is_set():  # board reset behind an open port
                self._rehandshake(after_reset=True)
                continue
            now = time.monotonic()
            # A board that went quiet may be rebooting: until its firmware claims the port,
            # any 0x03 in our frames is a Ctrl-C to its boot. So talk to it only slowly.
            quiet = (time.monotonic_ns() - self._last_rx_ns) / 1e9 > QUIET_S
            if now >= next_sync:
                self.time_sync()
                next_sync = now + (QUIET_PROBE_S if quiet else self.sync_s)
            self._heartbeat(QUIET_PROBE_S if quiet else self.heartbeat_s)
            self._watch_silence()

    def _heartbeat(self, every_s: float) -> None:
        if self.mode != catalog.MODE_HOST:
            return
        if time.monotonic_ns() - self._last_feed_ns >= every_s * 1e9:
            try:
                self.send(make("HEARTBEAT"))
            except LinkDown:
                pass

    def _watch_silence(self) -> None:
        quiet = (time.monotonic_ns() - self._last_rx_ns) / 1e9
        if quiet > self.silence_s and not self._silent:
            self._silent = True
            self._event("silent", "no frame from the board for %.1f s" % quiet)
        elif quiet <= self.silence_s and self._silent:
            self._silent = False
            self._event("resumed", "frames flow again")

    def _recover(self) -> None:
        """The port failed: report it, then reopen it until it answers again."""
        self._up.clear()
        self._close_port()
        self.stats.disconnects += 1
        self._event("disconnected", "%s went away" % self.url)
        if not self.reconnect_enabled:
            self._stop.set()
            return
        while not self._stop.wait(0.2):
            try:
                self._open_port()
            except LinkError:
                continue
            if self._rehandshake():
                return
            self._close_port()

    def _rehandshake(self, after_reset: bool = False) -> bool:
        try:
            self._handshake()
            self.clock.reset()
            self.last_telemetry = None  # the board may have rebooted while away
            self._cycle_floor = self._board_cycles()
            self._reapply()
        except LinkError as e:
            self._event("reconnect_failed", str(e))
            if after_reset:
                self._lost.set()  # reopen from scratch
            return False
        self.stats.reconnects += 1
        self._up.set()
        self._event("reconnected", self.describe_board())
        return True

    def _board_cycles(self) -> int | None:
        """The board's loop cycles since boot (None from a board without GET_STATS)."""
        try:
            return self.request(make("GET_STATS"), wait_up=False).cycles
        except NackError:
            return None

    def _reapply(self) -> None:
        """Put back what this session had set: config, joints, then mode."""
        if self.config:
            self.request(make("SET_CONFIG", **self.config), wait_up=False)
        for fields in self.joints.values():
            self.request(make("SET_JOINT", **fields), wait_up=False)
        if self.mode is not None:
            self.request(make("SET_MODE", mode=self.mode), wait_up=False)

    # -- statistics ------------------------------------------------------------------
    def stats_snapshot(self) -> dict:
        """Everything a dashboard shows about the link, as plain numbers."""
        s = self.stats
        fps, bps = s.rates(time.monotonic_ns())
        rtts = sorted(s.rtt_ns)
        drops = {reason: n + s.drops_before.get(reason, 0) for reason, n in self.decoder.drops.items()}
        return {
            "connected": self.connected,
            "frames": s.frames,
            "frames_per_s": fps,
            "bytes_per_s": bps,
            "drops": drops,
            "dropped": sum(drops.values()),
            "resyncs": sum(drops.values()),  # each dropped frame: decoding restarts at the next 0x00
            "seq_gaps": s.seq_gaps,
            "lost_frames": s.lost_frames,
            "tx_frames": s.tx_frames,
            "retries": s.retries,
            "timeouts": s.timeouts,
            "nacks": s.nacks,
            "disconnects": s.disconnects,
            "reconnects": s.reconnects,
            "rtt_ms": rtts[len(rtts) // 2] / 1e6 if rtts else None,
            "sync_rtt_ms": (self.clock.best_rtt_ns or 0) / 1e6 if self.clock.synced else None,
            "drift_ppm": self.clock.drift_ppm if self.clock.synced else None,
        }
