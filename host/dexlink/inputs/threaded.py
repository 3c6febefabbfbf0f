"""An input whose frames come from a thread of its own (a socket, a poll, a replay)."""
from __future__ import annotations

import threading

from dexlink.inputs.frame import HandInput


class ThreadedInput(HandInput):
    """`start_worker(target)` runs target on a daemon thread until stop(), which joins it."""

    _thread: threading.Thread | None = None

    def start_worker(self, target, name: str) -> None:
        HandInput.start(self)
        self._thread = threading.Thread(target=target, name="dexlink-" + name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        super().stop()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
