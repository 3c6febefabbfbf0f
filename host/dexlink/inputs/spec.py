"""`--input` values -> hand inputs. One place knows them all:

    exo                      the exoskeleton (no HandInput: the board's own TELEOP path)
    avp:ADDRESS              Apple Vision Pro running Tracking Streamer at ADDRESS
    xr                       a WebXR headset: the page on https://BIND:PORT/ (default 8443)
    glove                    Rokoko Studio's JSON on udp PORT (default 14043)
    glove:udp                dexlink's generic JSON on udp PORT (default 14044)
    glove:zmq:ENDPOINT       dexlink's generic JSON from a ZMQ publisher (tcp://HOST:PORT)
    camera[:N|:VIDEO]        a webcam (index N, default 0) or a video file, through MediaPipe
    file:PATH                a recording (.jsonl or .npz) replayed at its pace
"""
from __future__ import annotations

from dataclasses import dataclass

from dexlink.errors import UsageError
from dexlink.inputs.frame import HandInput, InputLimits
from dexlink.inputs.udp import LOOPBACK

KINDS = ("exo", "avp", "xr", "glove", "camera", "file")
INPUT_HELP = ("exo | avp:ADDRESS | xr | glove | glove:udp | glove:zmq:ENDPOINT | "
              "camera[:N|:VIDEO] | file:PATH")


@dataclass(frozen=True)
class InputSpec:
    kind: str  # one of KINDS
    arg: str = ""  # what follows "kind:" (an address, a path, a camera)

    def __str__(self) -> str:
        return self.kind + (":" + self.arg if self.arg else "")


def parse_input(text: str) -> InputSpec:
    kind, _, arg = text.partition(":")
    if kind not in KINDS:
        raise UsageError("--input %r: expected %s" % (text, INPUT_HELP))
    if kind == "avp" and not arg:
        raise UsageError("--input avp needs the headset's address: --input avp:192.168.1.20")
    if kind == "file" and not arg:
        raise UsageError("--input file needs a path: --input file:hands.jsonl")
    if kind in ("exo", "xr") and arg:
        raise UsageError("--input %s takes nothing after ':' (got %r)" % (kind, text))
    if kind == "glove" and arg and arg != "udp" and not arg.startswith("zmq:"):
        raise UsageError("--input %r: a glove is 'glove' (Rokoko), 'glove:udp' or "
                         "'glove:zmq:tcp://HOST:PORT'" % text)
    return InputSpec(kind, arg)


def open_input(spec: InputSpec | str, *, bind: str = LOOPBACK, port: int | None = None,
               limits: InputLimits | None = None, loop: bool = False) -> HandInput:
    """The HandInput for `spec`, not started. `port` is the input's own listening port
    (None: its default); `bind` the address its listener binds to."""
    if isinstance(spec, str):
        spec = parse_input(spec)
    kind, arg = spec.kind, spec.arg
    if kind == "exo":
        raise UsageError("the exoskeleton is not a host input: it drives the hand on the board")
    if kind == "file":
        from dexlink.inputs.recorded import FileInput
        return FileInput(arg, loop=loop, limits=limits)
    if kind == "avp":
        from dexlink.inputs.avp import AvpInput
        return AvpInput(arg, limits=limits)
    if kind == "xr":
        from dexlink.inputs.webxr import WEBXR_PORT, WebXRInput
        return WebXRInput(WEBXR_PORT if port is None else port, bind, limits)
    if kind == "camera":
        from dexlink.inputs.camera import CameraInput
        camera, video = (int(arg), None) if arg.isdigit() or not arg else (0, arg)
        return CameraInput(port or 0, bind, limits, camera=camera or 0, video=video)
    if arg.startswith("zmq:"):
        from dexlink.inputs.zmq_input import ZmqInput
        return ZmqInput(arg[4:], limits=limits)
    if arg == "udp":
        from dexlink.inputs.udp import GENERIC_UDP_PORT, GenericUdpInput
        return GenericUdpInput(GENERIC_UDP_PORT if port is None else port, bind, limits)
    from dexlink.inputs.rokoko import ROKOKO_PORT, RokokoInput
    return RokokoInput(ROKOKO_PORT if port is None else port, bind, limits)
