"""The world's RGB-D camera rendered in a child process, so rendering never holds the
board host's interpreter lock nor competes with the board's interpreter for the CPU.

Measured on the 2-core machine this runs on: in the host process, an RGB-D frame at
640x480 (Mesa's llvmpipe behind EGL: a CPU renderer with a thread per core, plus the
depth conversion in numpy) took about 160 ms of CPU per second in bursts over both
cores, and the firmware's loop lost cycles to it. Here the child renders at a lower
scheduling priority (dexlink.world.priority.RENDER_NICE) with one
rasteriser thread, so the board's interpreter always wins the CPU, and the host's camera
thread only copies the model's state in and the finished frame out.

Per frame, through one shared memory block (a memfd both processes map):

    host   with world.lock: time, qpos, qvel, act, mocap poses -> state   then b"r"
    child  state -> its own MjData, mj_forward, render -> colour, depth   then b"k"
    host   copies colour (BGR uint8) and depth (uint16 mm) out of the block

The model is sent once, pickled, over the same socket. The child exits when the socket
closes: at close(), or when the host process ends whichever way.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from dexlink.world.priority import RENDER_NICE, process_yields_to_board
from dexlink.world.world import STATE_FIELDS

RASTER_THREADS = "1"  # llvmpipe's threads: one core at most, the other stays the board's
START_TIMEOUT_S = 30.0  # the child imports MuJoCo and makes a GL context (slow when busy)
FRAME_TIMEOUT_S = 30.0  # a hung child; a starved one is late (the camera says stalled)


class RenderError(RuntimeError):
    """The render process failed or stopped answering; the text says why."""


class SharedFrame:
    """The block's layout, the same on both sides (from the model's sizes): the state
    the picture is drawn from (float64) and the picture (colour, then depth)."""

    def __init__(self, buf, model, width: int, height: int):
        self.sizes = (1, model.nq, model.nv, model.na, 3 * model.nmocap, 4 * model.nmocap)
        n = sum(self.sizes)
        self.state = np.ndarray((n,), np.float64, buf, 0)
        at = 8 * n
        self.color = np.ndarray((height, width, 3), np.uint8, buf, at)
        at += height * width * 3
        self.depth = np.ndarray((height, width), np.uint16, buf, at + at % 2)

    @staticmethod
    def nbytes(model, width: int, height: int) -> int:
        n = 1 + model.nq + model.nv + model.na + 7 * model.nmocap
        return 8 * n + height * width * 3 + 1 + height * width * 2

    def fields(self):
        """(MjData field, its slice of the state), in the state's order."""
        out, at = [], 0
        for field, size in zip(STATE_FIELDS, self.sizes):
            out.append((field, self.state[at:at + size]))
            at += size
        return out

    def put(self, data) -> None:
        for field, part in self.fields():
            part[:] = np.ravel(getattr(data, field))

    def take(self, data) -> None:
        for field, part in self.fields():
            if field == "time":
                data.time = part[0]
            else:
                getattr(data, field)[:] = part.reshape(getattr(data, field).shape)


class ChildProcess:
    """A helper process of the world's: one shared memory block (a memfd both map) for the
    data, a socket for the cues (b"r": work on the block; b"k": done) and for the set-up
    sent once, pickled. `module` is run with `-m` and serves with serve_requests."""

    module = __name__
    what = "render"

    def __init__(self, nbytes: int, setup):
        mem_fd = os.memfd_create("dexlink-" + self.what)
        ours, theirs = socket.socketpair()
        try:
            os.ftruncate(mem_fd, nbytes)
            self._mem = mmap.mmap(mem_fd, nbytes)
            self._conn = Connection(ours.detach())
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module, str(theirs.fileno()), str(mem_fd)],
                pass_fds=(theirs.fileno(), mem_fd), env=child_env())
        finally:
            theirs.close()
            os.close(mem_fd)
        try:
            try:
                self._conn.send(setup)
            except OSError:  # it ended before it read the set-up: _answer says how
                pass
            self._answer(START_TIMEOUT_S, "start")
        except BaseException:
            self.close()
            raise

    def request(self) -> None:
        """Have the child work on the block; back when it is done."""
        self._conn.send_bytes(b"r")
        self._answer(FRAME_TIMEOUT_S, "frame")

    def _answer(self, timeout: float, what: str) -> None:
        try:
            if not self._conn.poll(timeout):
                raise RenderError("the %s process gave no %s in %g s" % (self.what, what, timeout))
            reply = self._conn.recv_bytes()
        except (EOFError, OSError):
            raise RenderError("the %s process ended (exit status %s)"
                              % (self.what, self._proc.poll())) from None
        if reply != b"k":
            raise RenderError("the %s process: %s" % (self.what, reply.decode(errors="replace")))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        """Close the socket (the child's cue to exit) and wait for the child."""
        self._conn.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(BufferError):  # a caller still holds a view: GC frees it
            self._mem.close()


class RenderProcess(ChildProcess):
    """A World's camera rendered in a child process: render() -> (BGR uint8, depth uint16
    mm), the frame of the world's state at the call, as sensors.RGBDRenderer gives it."""

    def __init__(self, world, width: int = 640, height: int = 480, camera: str | None = None):
        from dexlink.world.scene import CAMERA_NAME
        self.world = world
        super().__init__(SharedFrame.nbytes(world.model, width, height),
                         (world.model, width, height, camera or CAMERA_NAME))
        self.frame = SharedFrame(self._mem, world.model, width, height)

    def render(self, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The picture of a state (World.state_vector, an Exposure's) or of the world now."""
        if state is None:
            with self.world.lock:
                self.frame.put(self.world.data)
        else:
            self.frame.state[:] = state
        self.request()
        # Frames outlive this call (queued for the writer): copies, the block is reused.
        return self.frame.color.copy(), self.frame.depth.copy()


def child_env() -> dict:
    """The child's environment: dexlink importable as here, one rasteriser thread."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["LP_NUM_THREADS"] = RASTER_THREADS
    return env


# ---- the child -------------------------------------------------------------------------
class _Snapshot:
    """What RGBDRenderer reads of a World: the model, a state, a lock (nobody else here)."""

    def __init__(self, model):
        import mujoco
        self.model = model
        model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_SENSOR  # a picture needs none
        self.data = mujoco.MjData(model)
        self.lock = contextlib.nullcontext()


def serve_requests(conn: Connection, work) -> None:
    """The child's side: work() at every request, until the host closes the socket."""
    conn.send_bytes(b"k")
    while True:
        try:
            conn.recv_bytes()
        except (EOFError, OSError):  # the host closed the socket or is gone
            return
        work()
        conn.send_bytes(b"k")


def serve(conn: Connection, mem_fd: int) -> None:
    import mujoco

    from dexlink.world.sensors import RGBDRenderer
    model, width, height, camera = conn.recv()
    mem = mmap.mmap(mem_fd, SharedFrame.nbytes(model, width, height))
    frame = SharedFrame(mem, model, width, height)
    scene = _Snapshot(model)
    try:
        renderer = RGBDRenderer(scene, width, height, camera)
    except Exception as e:  # no EGL, no such camera: the host's camera reports it
        conn.send_bytes(("cannot render: %s" % e).encode())
        return
    # Started at normal priority (a loaded machine would make a slow start slower);
    # from here on, this process and its rasteriser threads yield.
    process_yields_to_board(RENDER_NICE)

    def render():
        frame.take(scene.data)
        mujoco.mj_forward(model, scene.data)
        renderer.render(frame.color, frame.depth)
    try:
        serve_requests(conn, render)
    finally:
        renderer.close()


def run_child(argv, serve_fn) -> int:
    """A child's main: its socket and memory block from argv; Ctrl-C is the host's."""
    conn_fd, mem_fd = int(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host closes us
    serve_fn(Connection(conn_fd), mem_fd)
    return 0


def main(argv) -> int:
    return run_child(argv, serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
