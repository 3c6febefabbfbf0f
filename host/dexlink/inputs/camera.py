"""The webcam input: the MediaPipe worker (dexlink/inputs/mediapipe_worker.py) runs in its
own environment and process and sends the generic JSON over UDP to this listener.

The environment: `make mediapipe-env` makes it in dexlink's config directory (see
`mediapipe_python()`), or point DEXLINK_MEDIAPIPE_PYTHON at any Python that has
mediapipe==0.10.21, numpy<2 and OpenCV.
"""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from dexlink.errors import UserError
from dexlink.inputs.certs import config_dir
from dexlink.inputs.frame import InputLimits
from dexlink.inputs.mediapipe_worker import NO_SOURCE  # the worker's top level is stdlib only
from dexlink.inputs.udp import LOOPBACK, GenericUdpInput

MEDIAPIPE_VERSION = "0.10.21"
SETUP_HINT = ("the camera input runs MediaPipe %s in an environment of its own: run `make mediapipe-env` "
              "in the dexlink checkout, or make a venv with `pip install mediapipe==%s 'numpy<2' "
              "opencv-python-headless` and set DEXLINK_MEDIAPIPE_PYTHON to its python"
              % (MEDIAPIPE_VERSION, MEDIAPIPE_VERSION))


def mediapipe_env_dir() -> Path:
    return config_dir() / "mediapipe-env"


def mediapipe_python() -> Path | None:
    """The MediaPipe environment's Python, or None when there is none."""
    given = os.environ.get("DEXLINK_MEDIAPIPE_PYTHON")
    if given:
        return Path(given) if Path(given).is_file() else None
    bindir = "Scripts" if sys.platform == "win32" else "bin"
    exe = mediapipe_env_dir() / bindir / ("python.exe" if sys.platform == "win32" else "python")
    return exe if exe.is_file() else None


def worker_script() -> Path:
    return Path(str(resources.files("dexlink.inputs").joinpath("mediapipe_worker.py")))


class CameraInput(GenericUdpInput):
    """Listens for the worker's frames and runs the worker (unless `spawn` is False, for a
    worker started by hand, e.g. on another machine with the camera)."""

    def __init__(self, port: int = 0, bind: str = LOOPBACK, limits: InputLimits | None = None,
                 camera: int = 0, video: str | None = None, spawn: bool = True):
        super().__init__(port, bind, limits, source="camera")
        self.camera = camera
        self.video = video
        self.spawn = spawn
        self.worker: subprocess.Popen | None = None
        if spawn and mediapipe_python() is None:
            raise UserError(SETUP_HINT)

    def describe(self) -> str:
        return "camera %s through MediaPipe (udp://%s:%d)" % (self.video or self.camera, self.bind, self.port)

    def failed(self) -> str:
        """Why frames will not come any more ("" while the worker runs)."""
        if self.worker is None or self.worker.poll() is None:
            return ""
        if self.worker.returncode == NO_SOURCE:
            return "the MediaPipe worker cannot open %s" % (self.video or "camera %d" % self.camera)
        return "the MediaPipe worker exited with status %d" % self.worker.returncode

    def start(self) -> CameraInput:
        super().start()
        if self.spawn:
            cmd = [str(mediapipe_python()), str(worker_script()), "--port", str(self.port),
                   "--host", "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind]
            cmd += ["--video", self.video] if self.video else ["--camera", str(self.camera)]
            self.worker = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        super().stop()
