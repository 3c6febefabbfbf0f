"""Commands out and their answers back: sequence numbers, the pending table, retries.

Apply-once: a retry after silence repeats the first frame, sequence number included, so
a board that did get the command (only its answer was lost) answers again without
applying it twice (see docs/interfaces.md, "How the firmware loop answers").
"""
from __future__ import annotations

import threading
import time

from dexproto import catalog
from dexproto.stream import Message, encode_payload, frame_payload

from .errors import LinkDown, NackError, RequestTimeout
from .settings import LinkSettings
from .stats import LinkStats
from .transport import Transport

CTRL_C = b"\x03"
FEEDS = frozenset(("TARGETS", "TARGET_POINTS", "HEARTBEAT"))  # what feeds the board's watchdog

# The reply a request waits for, besides ACK/NACK.
REPLY_OF = {"HELLO": "HELLO_REPLY", "GET_CONFIG": "CONFIG", "GET_JOINT": "JOINT_CONFIG",
            "GET_STATS": "STATS", "TIME_SYNC": "TIME_SYNC_REPLY"}


class Sender:
    """Numbers messages and writes them as frames."""

    def __init__(self, transport: Transport, stats: LinkStats):
        self.transport = transport
        self.stats = stats
        self.last_feed_ns = 0  # the last TARGETS or HEARTBEAT sent
        self._seq = 0

    def send(self, msg: Message, on_seq=None, framed: list | None = None) -> int:
        """Send a message with the next sequence number (returned). Thread-safe.

        on_seq(seq), if given, runs under the write lock right before the write, so whoever
        waits for the answer is registered before the answer can arrive. framed, if given,
        keeps [seq, frame] of the first send: later sends with it repeat that very frame
        (a retry the board recognises and does not apply twice).
        """
        with self.transport.writing() as write:
            if framed:
                seq, frame = framed
            else:
                seq, frame = self._ctrl_c_free(msg)
                if framed is not None:
                    framed[:] = [seq, frame]
            if on_seq is not None:
                on_seq(seq)
            write(frame)
            self.stats.tx_frames += 1
            self.stats.tx_bytes += len(frame)
            if msg.name in FEEDS:
                self.last_feed_ns = time.monotonic_ns()
        return seq

    def _ctrl_c_free(self, msg: Message) -> tuple[int, bytes]:
        """The next sequence number whose frame has no 0x03 byte, and that frame.

        A board that is booting (or at its REPL) takes 0x03 as Ctrl-C until its firmware
        claims the port: a frame arriving then would kill the boot. The sequence number
        is ours to choose, and it changes the CRC and COBS codes; after a few tries the
        frame goes as is. COBS copies every non-zero byte, so a 0x03 in the type byte
        (SET_MODE's) or the body is in every frame whatever the number: then the first
        one goes (streamed goals hold one almost always; trying 16 cost 0.4 ms a goal).
        """
        first = self._seq
        payload = encode_payload(msg, first)
        if CTRL_C in payload[:1] or CTRL_C in payload[catalog.HEADER_SIZE:]:
            self._seq = (first + 1) & 0xFFFF
            return first, frame_payload(payload)
        for k in range(16):
            seq = (first + 257 * k) & 0xFFFF  # both bytes change: a zero byte moves COBS codes
            frame = frame_payload(payload if k == 0 else encode_payload(msg, seq))
            if CTRL_C not in frame:
                break
        else:
            seq = first
            frame = frame_payload(payload)
        self._seq = (seq + 1) & 0xFFFF
        return seq, frame


class Pending:
    """A request waiting for its ACK/NACK or reply."""

    def __init__(self, msg: Message, reply: str | None, match):
        self.msg = msg
        self.reply = reply
        self.match = match
        self.seqs: set[int] = set()
        self.done = threading.Event()
        self.result: Message | None = None
        self.sent_ns = 0

    def sent(self, seq: int) -> None:
        self.seqs.add(seq)
        self.sent_ns = time.monotonic_ns()

    def offer(self, m: Message) -> bool:
        """Take m if it answers this request."""
        if m.name in ("ACK", "NACK"):
            hit = m.acked_type == self.msg.spec.type and m.acked_seq in self.seqs
        else:
            hit = m.name == self.reply and (self.match is None or self.match(m))
        if hit:
            self.result = m
            self.done.set()
        return hit


class Requests:
    """Requests that wait for their answer. up: the link is handshaken; ended: closed."""

    def __init__(self, settings: LinkSettings, sender: Sender, stats: LinkStats,
                 up: threading.Event, ended: threading.Event):
        self.settings = settings
        self.sender = sender
        self.stats = stats
        self.up, self.ended = up, ended
        self._lock = threading.Lock()
        self._pending: list[Pending] = []

    def offer(self, m: Message) -> None:
        """A message from the board: to the first request it answers, if any."""
        with self._lock:
            for p in self._pending:
                if p.offer(m):
                    return

    def transact(self, msg: Message, timeout: float, match=None,
                 framed: list | None = None) -> Message:
        """One attempt: send, wait for ACK/NACK or the reply. Raises NackError/RequestTimeout.

        framed: see Sender.send; the same list across attempts makes them one command."""
        p = Pending(msg, REPLY_OF.get(msg.name), match)
        with self._lock:
            self._pending.append(p)
        try:
            self.sender.send(msg, p.sent, framed)
            if not p.done.wait(timeout):
                raise RequestTimeout("%s: no answer to %s within %.0f ms" % (
                    self.settings.url, msg.name, timeout * 1e3))
        finally:
            with self._lock:
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
        s = self.settings
        timeout = s.timeout if timeout is None else timeout
        retries = s.retries if retries is None else retries
        framed: list = []
        session = self.stats.reconnects
        down = None
        busy_until = time.monotonic() + s.busy_s
        attempt = 0
        while attempt <= retries:
            if self.ended.is_set():  # closed: nobody will wait for the answer
                raise LinkDown("%s: the link is closed; %s not sent" % (s.url, msg.name))
            if attempt:
                self.stats.retries += 1
                if wait_up and not self.up.is_set() and not self.up.wait(timeout):
                    attempt += 1
                    continue
            if self.stats.reconnects != session:
                framed, session = [], self.stats.reconnects
            try:
                return self.transact(msg, timeout, match, framed)
            except RequestTimeout:
                self.stats.timeouts += 1
            except LinkDown as e:
                if not s.reconnect:
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
        if down is not None and not self.up.is_set():
            raise LinkDown("%s: the board is gone (%s); %s not sent" % (s.url, down, msg.name))
        raise RequestTimeout("%s: no answer to %s after %d tries of %.0f ms" % (
            s.url, msg.name, retries + 1, timeout * 1e3))
