"""HELLO and its reply, and what to tell the user when something else answers."""
from __future__ import annotations

import threading
import time

from dexproto import catalog
from dexproto.stream import Message, ProtocolError, StreamDecoder, check_hello, make

from .errors import HandshakeError, NackError, RequestTimeout
from .requests import Requests
from .settings import LinkSettings
from .transport import Transport

FLASH_HINT = ("flash the firmware with `dexlink flash --port %s --hand HAND.toml --board BOARD` "
              "(or try `dexlink session --sim` for a virtual board)")
FIRST_BYTES_KEPT = 256  # what arrived before the handshake succeeded, for the error


def describe_board(board: Message | None) -> str:
    """A HELLO_REPLY in one line: name, firmware and protocol versions, joints, rate."""
    if board is None:
        return "no board"
    b = board
    return "%s: firmware %d.%d.%d, protocol %d.%d, %d joints at %d Hz%s" % (
        b.text or "board", b.fw_major, b.fw_minor, b.fw_patch, b.proto_major, b.proto_minor,
        b.n_joints, b.loop_hz, " (virtual)" if b.capabilities & catalog.CAP_VIRTUAL else "")


class Handshake:
    """Says HELLO until the board answers, refuses, or handshake_timeout passes."""

    def __init__(self, settings: LinkSettings, transport: Transport, requests: Requests,
                 ended: threading.Event):
        self.settings = settings
        self.transport = transport
        self.requests = requests
        self.ended = ended
        self.first_bytes = bytearray()

    def new_connection(self) -> None:
        self.first_bytes.clear()

    def note(self, data: bytes) -> None:
        """Bytes that arrived while not handshaken: kept (the first few) for the error."""
        if len(self.first_bytes) < FIRST_BYTES_KEPT:
            self.first_bytes += data[:FIRST_BYTES_KEPT]

    def run(self, decoder: StreamDecoder) -> Message:
        """The board's HELLO_REPLY, checked; raises HandshakeError saying what answered
        instead (decoder: the connection's, whose drops tell a wrong baud rate)."""
        s = self.settings
        hello = make("HELLO", proto_major=catalog.PROTOCOL_MAJOR, proto_minor=catalog.PROTOCOL_MINOR)
        # A lone delimiter ends whatever half frame the board may hold from before.
        self.transport.write(b"\x00")
        deadline = time.monotonic() + s.handshake_timeout
        reply = None
        while reply is None and time.monotonic() < deadline and not self.ended.is_set():
            try:
                reply = self.requests.transact(
                    hello, timeout=min(0.3, max(0.05, deadline - time.monotonic())))
            except NackError as e:
                if e.error == catalog.ERR_VERSION:
                    raise HandshakeError(
                        "%s: the board refused protocol %d.%d (version mismatch); %s"
                        % (s.url, catalog.PROTOCOL_MAJOR, catalog.PROTOCOL_MINOR,
                           FLASH_HINT % s.url)) from None
                raise HandshakeError("%s: the board refused HELLO: %s" % (s.url, e)) from None
            except RequestTimeout:
                if not self.transport.alive:
                    break
        if reply is None:
            raise HandshakeError(self._silence_report(decoder))
        try:
            check_hello(reply)
        except ProtocolError as e:
            raise HandshakeError("%s: %s" % (s.url, e)) from None  # names `dexlink flash`
        return reply

    def _silence_report(self, decoder: StreamDecoder) -> str:
        s = self.settings
        seen = bytes(self.first_bytes[:80])
        if not seen:
            return ("no answer from %s at %d baud within %.1f s: no dexlink firmware is running "
                    "there; %s" % (s.url, s.baud, s.handshake_timeout, FLASH_HINT % s.url))
        text = seen.decode("ascii", "replace")
        if ">>>" in text or "MicroPython" in text:
            what = "a MicroPython REPL, not dexlink firmware"
        elif decoder.dropped:
            what = "%d bad frames (%s): wrong baud rate, or not dexlink firmware" % (
                decoder.dropped, ", ".join("%s %d" % kv for kv in decoder.drops.items() if kv[1]))
        else:
            what = "bytes that are not dexlink frames"
        return "%s answered with %s: %r; %s" % (s.url, what, seen, FLASH_HINT % s.url)
