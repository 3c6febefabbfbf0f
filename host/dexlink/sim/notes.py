"""Notes from the interpreter, cut into whole records (the layout and the types are the
board's `vnotes`, loaded from the same file: one definition for both sides)."""
from __future__ import annotations

from dexlink.sim.boardcode import vnotes


class NoteReader:
    """Bytes from the notes pipe in, (type, text) out; type is one of vnotes.NOTE_*."""

    def __init__(self):
        self._buf = bytearray()

    def clear(self) -> None:
        """Forget a partial record (its interpreter is gone)."""
        self._buf.clear()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> tuple[bytes, str] | None:
        """The next whole note, or None until one has arrived."""
        buf = self._buf
        head = vnotes.HEADER_SIZE
        if len(buf) < head:
            return None
        n = buf[1] | (buf[2] << 8)
        if len(buf) < head + n:
            return None
        kind = bytes(buf[:1])
        text = bytes(buf[head:head + n]).decode("utf-8", "replace")
        del buf[:head + n]
        return kind, text
