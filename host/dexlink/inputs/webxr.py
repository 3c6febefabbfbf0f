"""WebXR headsets (Meta Quest and others): dexlink serves a page over HTTPS that reads WebXR
Hand Input and streams the joints back over a websocket on the same port.

    GET /      the page (dexlink/inputs/webxr_page.html)
    GET /ws    the websocket; each message one hand:
               {"side": "right"|"left", "seq": n,
                "wrist": 16 numbers, the wrist joint's pose, column-major (WebXR's layout),
                "xr25": 25 [x, y, z], XRHand's joints in its order, in the same space}

WebXR's joint spaces follow OpenXR's axes (-Z along the bone to the tip, +Y out of the back
of the hand), so the wrist joint's pose is the frame's wrist pose as it is; the 25 joints
are OpenXR's 26 without the palm, which is put at the middle of the middle metacarpal.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import threading
from http import HTTPStatus
from importlib import resources

import numpy as np

from dexlink.errors import UserError
from dexlink.inputs.certs import ensure_certificate, host_names
from dexlink.inputs.frame import N_JOINTS, BadFrame, HandFrame, InputLimits, to_wrist_frame
from dexlink.inputs.udp import LOOPBACK, DatagramInput

WEBXR_PORT = 8443
MAX_CLIENTS = 4
_XR25_TO_OPENXR = np.arange(1, N_JOINTS)  # XRHand joint i is OpenXR joint i + 1


def page_html() -> bytes:
    return resources.files("dexlink.inputs").joinpath("webxr_page.html").read_bytes()


def frame_from_webxr(message, *, received_ns: int, next_seq) -> HandFrame:
    """One websocket message -> a frame (BadFrame names what is wrong)."""
    if not isinstance(message, dict):
        raise BadFrame("message is not an object")
    side = message.get("side")
    if side not in ("right", "left"):
        raise BadFrame("'side' is %r, not 'right' or 'left'" % (side,))
    seq = message.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        seq = next_seq()
    try:
        wrist = np.array(message["wrist"], dtype=np.float64)
        xr25 = np.array(message["xr25"], dtype=np.float64)
    except KeyError as e:
        raise BadFrame("no %s" % e) from None
    except (TypeError, ValueError):
        raise BadFrame("'wrist' or 'xr25' is not numbers") from None
    if wrist.shape != (16,):
        raise BadFrame("'wrist' is not 16 numbers")
    if xr25.shape != (25, 3):
        raise BadFrame("'xr25' is not 25 [x, y, z]")
    wrist = wrist.reshape(4, 4).T  # column-major -> row-major
    world = np.empty((N_JOINTS, 3))
    world[_XR25_TO_OPENXR] = xr25
    world[0] = 0.5 * (world[11] + world[12])
    return HandFrame(t_ns=received_ns, seq=seq, source="xr", side=side, wrist=wrist,
                     joints=to_wrist_frame(world, wrist), valid=np.ones(N_JOINTS, dtype=bool))


class WebXRInput(DatagramInput):
    """Serves the page and its websocket on https://BIND:PORT (loopback unless told)."""

    source = "xr"

    def __init__(self, port: int = WEBXR_PORT, bind: str = LOOPBACK,
                 limits: InputLimits | None = None, cert_dir=None):
        super().__init__(port, bind, limits)
        try:
            import websockets  # noqa: F401
        except ImportError:
            raise UserError("the WebXR input needs websockets: pip install 'dexlink[inputs]'") from None
        self.cert_path, self.key_path = ensure_certificate(host_names(bind), cert_dir)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._bound_port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.clients = 0
        self.refused_clients = 0

    @property
    def port(self) -> int:
        return self._bound_port or self.requested_port

    def describe(self) -> str:
        hosts = [self.bind]
        if self.bind in ("0.0.0.0", "::", ""):  # every address: name those a headset can use
            hosts = [h for h in host_names(self.bind) if h not in ("localhost", "::1")] or hosts
        return "WebXR page on %s" % " or ".join(
            "https://%s:%d/" % ("[%s]" % h if ":" in h else h, self.port) for h in hosts)

    def parse(self, data, received_ns: int) -> list[HandFrame]:
        try:
            message = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadFrame("not JSON") from None
        return [frame_from_webxr(message, received_ns=received_ns, next_seq=self.next_seq)]

    def start(self) -> WebXRInput:
        self.start_worker(self._serve, "webxr")
        self._ready.wait(10.0)
        if self._error is not None:
            self._running = False
            raise UserError("cannot serve the WebXR page on %s:%d: %s"
                            % (self.bind, self.requested_port, self._error))
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            try:
                self._loop.call_soon_threadsafe(self._server.close)
            except RuntimeError:
                pass  # the loop has already ended
        super().stop()

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        async with serve(self._connection, self.bind, self.requested_port, ssl=context,
                         process_request=self._http, max_size=self.limits.max_message_bytes,
                         max_queue=4, compression=None, open_timeout=10) as server:
            self._server = server
            self._bound_port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await server.wait_closed()

    def _http(self, connection, request):
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            if self.clients >= MAX_CLIENTS:
                self.refused_clients += 1
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many clients\n")
            return None
        if path in ("/", "/index.html"):
            response = connection.respond(HTTPStatus.OK, "")
            body = page_html()
            response.body = body
            # Headers hold several values per name: the text/plain ones go first.
            del response.headers["Content-Type"]
            del response.headers["Content-Length"]
            response.headers["Content-Type"] = "text/html; charset=utf-8"
            response.headers["Content-Length"] = str(len(body))
            response.headers["Cache-Control"] = "no-store"
            return response
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _connection(self, connection) -> None:
        self.clients += 1
        try:
            async for message in connection:
                if not self.running:
                    break
                data = message.encode() if isinstance(message, str) else message
                self.handle(data)
        except Exception as e:  # noqa: BLE001 - a client that breaks off ends its own connection only
            if getattr(getattr(e, "sent", None), "code", None) == 1009:
                # websockets refused a message over max_size (and closed): count it as one.
                self.admit(self.limits.max_message_bytes + 1)
        finally:
            self.clients -= 1
            # A client that comes back (a page reload) counts from zero again.
            self.forget_sequence()
