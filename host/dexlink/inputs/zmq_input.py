"""The generic hand-frame JSON over ZMQ: a SUB socket connected to a glove bridge's PUB
(Manus and others publish their skeletons this way). The last part of each (multipart)
message is the JSON; earlier parts (a topic) are ignored. pyzmq is optional.
"""
from __future__ import annotations

from dexlink.errors import UserError
from dexlink.inputs.frame import InputLimits
from dexlink.inputs.udp import GenericUdpInput


class ZmqInput(GenericUdpInput):
    """Frames from a ZMQ publisher at `endpoint` (tcp://HOST:PORT); `bind=True` binds the SUB
    socket there instead, for bridges that connect."""

    def __init__(self, endpoint: str, *, bind: bool = False, limits: InputLimits | None = None,
                 source: str = "glove"):
        super().__init__(0, limits=limits, source=source)
        try:
            import zmq
        except ImportError:
            raise UserError("the ZMQ input needs pyzmq: pip install 'dexlink[inputs]'") from None
        self._zmq = zmq
        self.endpoint = endpoint
        self.bind_socket = bind
        self._ctx = None
        self._zsock = None

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[-1])

    def describe(self) -> str:
        return "%s on %s" % (self.source, self.endpoint)

    def start(self) -> ZmqInput:
        zmq = self._zmq
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        # Bounded on the wire side too: at most this many messages wait in ZMQ's own queue,
        # and none over the size limit is ever read.
        sock.setsockopt(zmq.RCVHWM, max(self.limits.queue_size * 4, 64))
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            (sock.bind if self.bind_socket else sock.connect)(self.endpoint)
        except zmq.ZMQError as e:
            sock.close()
            self._ctx.term()
            raise UserError("cannot open ZMQ %s: %s" % (self.endpoint, e)) from None
        self._zsock = sock
        self.start_worker(self._receive_zmq, "zmq")
        return self

    def stop(self) -> None:
        super().stop()
        if self._zsock is not None:
            self._zsock.close()
            self._ctx.term()
            self._zsock = None

    def _receive_zmq(self) -> None:
        zmq = self._zmq
        while self.running:
            if not self._zsock.poll(100):
                continue
            try:
                parts = self._zsock.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:
                continue
            self.handle(parts[-1])
