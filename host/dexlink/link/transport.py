"""The port: opened by URL, read by one thread, written under one lock.

Like pyserial's `serial.threaded.ReaderThread` it knows bytes only: what arrives goes to
the protocol's callback with its arrival time; frames, requests and sessions live in the
other parts. Unlike it, the port may be closed and opened again (a reconnection) under
the same reader thread, and a failure is not the end: it marks the port lost, and the
keeper decides what follows.
"""
from __future__ import annotations

import errno
import queue
import threading
import time
from contextlib import contextmanager
from functools import partial
from typing import Callable

import serial

from .errors import LinkDown, LinkError
from .settings import DEFAULT_BAUD

# pyserial racing a close from another thread raises TypeError/AttributeError on read
READ_ERRORS = (serial.SerialException, OSError, TypeError, AttributeError)
# pyserial's loop:// raises queue.Full when nobody reads what was written (its 4096 bytes
# are full for write_timeout): a stalled port like any other, not a crash of the writer
WRITE_ERRORS = (serial.SerialException, OSError, queue.Full)


def open_problem(e: Exception) -> str:
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


class Transport:
    """One pyserial URL (device path, `socket://host:port`, `loop://`)."""

    def __init__(self, url: str, baud: int = DEFAULT_BAUD, write_timeout: float = 2.0):
        self.url, self.baud = url, baud
        self.write_timeout = write_timeout  # seconds a write may wait for room on the port
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._lost = threading.Event()  # a read or write failed: the port is no use now

    @property
    def is_open(self) -> bool:
        return self._port is not None

    @property
    def lost(self) -> bool:
        """A read or write failed since the port was opened."""
        return self._lost.is_set()

    @property
    def alive(self) -> bool:
        return self._port is not None and not self._lost.is_set()

    def mark_lost(self) -> None:
        """Take the port for failed (the keeper then reopens it from scratch)."""
        self._lost.set()

    def open(self) -> None:
        """Open the port; raises LinkError saying why it cannot be opened."""
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0.05,
                                         write_timeout=self.write_timeout, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError("cannot open %s: %s" % (self.url, open_problem(e))) from None
        self._lost.clear()
        self._port = port

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except WRITE_ERRORS:
                pass

    def start_reader(self, on_data: Callable[[bytes, int], None],
                     ended: threading.Event) -> threading.Thread:
        """Start the thread that hands on_data(bytes, host monotonic ns at arrival) what
        arrives, until ended is set. It idles while the port is closed or lost."""
        t = threading.Thread(target=self._read_loop, args=(on_data, ended),
                             name="dexlink-reader", daemon=True)
        t.start()
        return t

    def _read_loop(self, on_data, ended: threading.Event) -> None:
        while not ended.is_set():
            port = self._port
            if port is None or self._lost.is_set():
                time.sleep(0.01)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except READ_ERRORS:
                self._lost.set()
                continue
            if data:
                on_data(data, time.monotonic_ns())

    @contextmanager
    def writing(self):
        """Hold the write lock; yields write(bytes). What is done inside (numbering a
        frame, registering who waits for its answer) happens in the order of the writes
        and before an answer can arrive. Raises LinkDown if the port is not open."""
        with self._write_lock:
            port = self._port
            if port is None:
                raise LinkDown("%s is not connected" % self.url)
            yield partial(self._write_to, port)

    def write(self, data: bytes) -> None:
        with self.writing() as write:
            write(data)

    def _write_to(self, port: serial.SerialBase, data: bytes) -> None:
        """The one place a write fails: the port is marked lost (the keeper reconnects)."""
        try:
            port.write(data)
        except WRITE_ERRORS as e:
            self._lost.set()
            raise LinkDown("%s: write failed: %s" % (self.url, e)) from None
