"""The virtual board's USB serial port, as the host sees it: a pseudo-terminal.

The host opens the pty's slave end (`port`), or `stable_port`, a symlink to it that stays
the same across unplug / replug the way /dev/serial/by-id/... does (a replugged board gets
a new pty, as a USB board may get a new ttyACM). The supervisor holds the master end: it
reads what the host wrote and writes what the board sends, from a bounded buffer that is
flushed as the host reads. No thread of its own: the supervisor's loop drives it.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import tty

HOST_BUFFER_LIMIT = 64 * 1024  # bytes held for a host that does not read (then dropped)
STABLE_NAME = "usb-dexlink_virtual_board-if00"


def nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class UsbPort:
    """A pty that can be plugged and unplugged, with a stable path and a to-host buffer."""

    def __init__(self):
        self.port: str | None = None  # the pty of the current plug-in (None while unplugged)
        self.stable_port: str | None = None
        self.master: int | None = None  # the supervisor's end (None while unplugged)
        self._slave: int | None = None
        self._dir: str | None = None
        self._out = bytearray()  # bytes for the host, waiting for it to read
        self.stats = dict(bytes_from_host=0, bytes_to_host=0, host_overflow=0, unplugs=0,
                          unplugged_drops=0)

    def open(self) -> None:
        """Make the directory the stable path lives in (like /dev/serial/by-id)."""
        self._dir = tempfile.mkdtemp(prefix="vboard-usb-")
        self.stable_port = os.path.join(self._dir, STABLE_NAME)

    def close(self) -> None:
        self.hang_up()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    @property
    def host_waiting(self) -> bool:
        """Whether bytes wait for the host (the supervisor then watches for room)."""
        return bool(self._out) and self.master is not None

    # -- the cable ------------------------------------------------------------------
    def plug(self) -> bool:
        """A new pty, linked from the stable path; False if already plugged."""
        if self.master is not None:
            return False
        master, slave = os.openpty()
        tty.setraw(slave)  # a USB serial port: no echo, no line discipline
        nonblocking(master)
        self.master, self._slave = master, slave
        self.port = os.ttyname(slave)
        link = self.stable_port + ".new"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(self.port, link)
        os.replace(link, self.stable_port)  # the path appears at once, complete
        return True

    def unplug(self) -> bool:
        """Pull the cable; False if already unplugged. (Stop watching `master` first.)"""
        if self.master is None:
            return False
        self.hang_up()
        self.stats["unplugs"] += 1
        return True

    def hang_up(self) -> None:
        """Close both ends of the pty: the host's open port hangs up (EIO)."""
        if self.master is None:
            return
        if self.stable_port and os.path.lexists(self.stable_port):
            os.unlink(self.stable_port)
        for fd in (self.master, self._slave):
            os.close(fd)
        self.master = self._slave = None
        self.port = None
        self._out.clear()  # bytes the host had not read yet go with the cable

    # -- bytes ------------------------------------------------------------------------
    def read(self) -> bytes:
        """What the host wrote (b"" when nothing waits or the port is gone)."""
        if self.master is None:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:  # BlockingIOError included
            return b""
        self.stats["bytes_from_host"] += len(data)
        return data

    def send(self, data: bytes) -> None:
        """Queue bytes for the host and write what the pty takes now."""
        if self.master is None:
            self.stats["unplugged_drops"] += len(data)  # no host: USB-CDC drops the write
            return
        if len(self._out) + len(data) > HOST_BUFFER_LIMIT:
            self.stats["host_overflow"] += len(data)  # nobody reads the port: a full USB FIFO
            return
        self._out += data
        self.flush()

    def flush(self) -> None:
        while self._out and self.master is not None:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            self.stats["bytes_to_host"] += n
            del self._out[:n]
