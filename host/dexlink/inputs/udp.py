"""UDP listeners: a base that turns datagrams into frames on its own thread, and the generic
JSON format's listener (any glove or tracker; the webcam worker sends to one too).

Each datagram is admitted (rate and size limits) before it is parsed, so a flood costs a
counter, not a parse; anything unparseable is counted and dropped; the listener binds to
loopback unless told otherwise.
"""
from __future__ import annotations

import socket
import time

from dexlink.inputs import wire
from dexlink.inputs.frame import BadFrame, HandFrame, InputLimits
from dexlink.inputs.threaded import ThreadedInput

LOOPBACK = "127.0.0.1"
GENERIC_UDP_PORT = 14044


class DatagramInput(ThreadedInput):
    """Frames from UDP datagrams; subclasses say how one datagram becomes frames (`parse`)."""

    source = "udp"

    def __init__(self, port: int, bind: str = LOOPBACK, limits: InputLimits | None = None):
        super().__init__(limits)
        self.bind = bind
        self.requested_port = port
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose when asked for port 0)."""
        return self._sock.getsockname()[1] if self._sock else self.requested_port

    def describe(self) -> str:
        return "%s on udp://%s:%d" % (self.source, self.bind, self.port)

    def start(self) -> DatagramInput:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.bind, self.requested_port))
        except OSError as e:
            sock.close()
            raise OSError(e.errno, "cannot listen on udp://%s:%d: %s"
                          % (self.bind, self.requested_port, e.strerror)) from None
        sock.settimeout(0.1)
        self._sock = sock
        self.start_worker(self._receive, self.source)
        return self

    def stop(self) -> None:
        super().stop()
        if self._sock is not None:
            self._sock.close()

    def _receive(self) -> None:
        # One byte over the limit is enough to tell an oversized datagram from a full one.
        size = self.limits.max_message_bytes + 1
        while self.running:
            try:
                data, _peer = self._sock.recvfrom(size)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                if self.running:
                    time.sleep(0.01)
                continue
            self.handle(data)

    def handle(self, data: bytes) -> None:
        """Admit, parse and queue one message (also the ZMQ and websocket inputs' path)."""
        if not self.admit(len(data)):
            return
        try:
            frames = self.parse(data, time.monotonic_ns())
        except BadFrame as e:
            self.reject(e.reason)
            return
        except Exception as e:  # noqa: BLE001 - whatever a peer sends must not end the listener
            self.reject("unreadable message (%s)" % type(e).__name__)
            return
        for frame in frames:
            self.offer(frame)

    def parse(self, data: bytes, received_ns: int) -> list[HandFrame]:
        raise NotImplementedError


class GenericUdpInput(DatagramInput):
    """dexlink's generic hand-frame JSON over UDP (dexlink.inputs.wire)."""

    source = "glove"

    def __init__(self, port: int = GENERIC_UDP_PORT, bind: str = LOOPBACK,
                 limits: InputLimits | None = None, source: str = "glove"):
        super().__init__(port, bind, limits)
        self.source = source

    def parse(self, data: bytes, received_ns: int) -> list[HandFrame]:
        return wire.decode(data, source=self.source, received_ns=received_ns, next_seq=self.next_seq)
