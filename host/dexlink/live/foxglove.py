"""A live view of a session or recording in Foxglove, over the Foxglove WebSocket protocol
(foxglove-sdk's server), on localhost only.

Topics (the same names and JSON schemas as an episode file, so one Foxglove layout shows
both a recording and the live board):
  /telemetry             dexlink.Telemetry: exoskeleton angles, goals, present positions
                         (cdeg), status, loop timing (at most telemetry_hz)
  /joint_states          foxglove.JointStates: present positions by joint name, radians
  /tf                    foxglove.FrameTransforms: the hand's links posed from the present
                         positions (at most pose_hz), for the URDF in the 3D panel
  /robot_description     the hand's URDF text ({"data": ...}); also served as the asset
                         package://dexlink/<hand>.urdf
  /tactile/<f>/image, /rgbd/color   foxglove.CompressedImage, JPEG (at most image_hz, and
                         only while someone watches)
  /tactile/<f>/contact   dexlink.Contact
  /events                dexlink.Event; /log: the same as foxglove.Log
In the 3D panel: add a URDF layer from the topic /robot_description (or the URL above).

Producers (the link's reader, the cameras, the recorder) only offer items to a bounded
queue and move on: a full queue drops the item (counted), never the producer's time.
One worker thread encodes and publishes.
"""
from __future__ import annotations

import json
import math
import queue
import threading
import time

import cv2

from dexlink.errors import UserError
from dexlink.live.kinematics import HandKinematics
from dexlink.record import schema

DEFAULT_PORT = 8765
HOST = "127.0.0.1"  # never another interface: the view is for this machine


class LiveViewError(UserError):
    """The live view cannot start (foxglove-sdk missing, the port taken)."""


def _foxglove():
    try:
        import foxglove
        import foxglove.channels
        import foxglove.messages
    except ImportError:
        raise LiveViewError("the live view needs foxglove-sdk: pip install 'dexlink[live]'") \
            from None
    return foxglove


class FoxgloveView:
    """A Foxglove WebSocket server fed with a board's streams.

    joint_names: the board's joints, in telemetry order; urdf: the hand as URDF text (None:
    no 3D model); port 0 picks a free one (`.port` says which).
    """

    def __init__(self, joint_names: list[str], urdf: str | None = None, port: int = DEFAULT_PORT,
                 hand: str = "hand", telemetry_hz: float = 200, pose_hz: float = 60,
                 image_hz: float = 15, queue_size: int = 512):
        fg = _foxglove()
        self._fg, self._msgs = fg, fg.messages
        self.joint_names = list(joint_names)
        self.kinematics = HandKinematics(urdf) if urdf else None
        self.urdf = urdf
        self.urdf_uri = "package://dexlink/%s.urdf" % hand
        self.periods = {"telemetry": 1e9 / telemetry_hz, "pose": 1e9 / pose_hz,
                        "image": 1e9 / image_hz}
        self.dropped = 0  # items the queue had no room for
        self._epoch = time.time_ns() - time.monotonic_ns()  # host monotonic -> wall clock
        self._due: dict[str, int] = {}
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._resend_urdf = threading.Event()
        self._ctx = fg.Context()
        self._channels: dict[str, object] = {}
        self._make_channels()
        try:
            self.server = fg.start_server(name="dexlink", host=HOST, port=port,
                                          context=self._ctx,
                                          server_listener=_listener(fg, self._resend_urdf),
                                          asset_handler=self._asset)
        except Exception as e:  # the SDK's own error type: a port in use, no permission
            raise LiveViewError("cannot serve the Foxglove live view on %s:%d: %s"
                                % (HOST, port, e)) from None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foxglove-view", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return "ws://%s:%d" % (HOST, self.port)

    def _make_channels(self) -> None:
        fg, ch = self._fg, self._fg.channels
        json_channel = lambda topic, name: fg.Channel(  # noqa: E731
            topic, schema=json.loads(schema.SCHEMAS[name]), context=self._ctx)
        self._channels["telemetry"] = json_channel(schema.TELEMETRY, "dexlink.Telemetry")
        self._channels["events"] = json_channel(schema.EVENTS, "dexlink.Event")
        self._channels["log"] = ch.LogChannel("/log", context=self._ctx)
        self._channels["joint_states"] = ch.JointStatesChannel("/joint_states", context=self._ctx)
        if self.kinematics is not None:
            self._channels["tf"] = ch.FrameTransformsChannel("/tf", context=self._ctx)
            self._channels["urdf"] = fg.Channel("/robot_description", schema={
                "title": "std_msgs/String", "type": "object",
                "properties": {"data": {"type": "string"}}}, context=self._ctx)

    def _camera_channel(self, topic: str, contact: bool):
        """The image (or contact) channel of a camera, made on its first frame."""
        key = topic if not contact else schema.contact_topic(schema.camera_of(topic))
        if key not in self._channels:
            if contact:
                self._channels[key] = self._fg.Channel(
                    key, schema=json.loads(schema.SCHEMAS["dexlink.Contact"]), context=self._ctx)
            else:
                self._channels[key] = self._fg.channels.CompressedImageChannel(
                    key, context=self._ctx)
        return self._channels[key]

    # --- taps: called on the producers' threads; never block ---------------------------
    def _due_now(self, what: str, t_ns: int) -> bool:
        if t_ns < self._due.get(what, 0):
            return False
        self._due[what] = t_ns + int(self.periods[what.split(":")[0]])
        return True

    def _offer(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def telemetry(self, msg, t_ns: int) -> None:
        """A TELEMETRY message and its sampling time (host monotonic ns)."""
        if self._due_now("telemetry", t_ns):
            self._offer(("telemetry", msg, t_ns, self._due_now("pose", t_ns)))

    def frame(self, frame, kind: str) -> None:
        """A camera frame (dexlink.capture.base.Frame; kind 'tactile' or 'rgbd')."""
        topic = schema.image_topic(frame.camera, kind)
        image = self._due_now("image:" + topic, frame.t_ns)
        if image or frame.contact is not None:
            self._offer(("frame", frame, topic, image))

    def event(self, kind: str, text: str, t_ns: int | None = None) -> None:
        self._offer(("event", kind, text, time.monotonic_ns() if t_ns is None else t_ns))

    def _asset(self, uri: str) -> bytes | None:
        return self.urdf.encode() if self.urdf and uri == self.urdf_uri else None

    # --- the worker ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._resend_urdf.is_set():
                self._resend_urdf.clear()
                self._channels["urdf"].log({"data": self.urdf}, log_time=self._epoch
                                           + time.monotonic_ns())
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                getattr(self, "_publish_" + item[0])(*item[1:])
            except Exception as e:  # a view must never take the session down
                self.dropped += 1
                self._last_error = e

    def _stamp(self, t_ns: int):
        wall = self._epoch + t_ns
        return self._msgs.Timestamp(sec=wall // 1_000_000_000, nsec=wall % 1_000_000_000)

    def _publish_telemetry(self, msg, t_ns: int, pose: bool) -> None:
        m = self._msgs
        wall = self._epoch + t_ns
        self._channels["telemetry"].log(schema.telemetry_json(msg), log_time=wall)
        present = {name: math.radians(it[2] / 100)
                   for name, it in zip(self.joint_names, msg.items)}
        if not pose:
            return
        stamp = self._stamp(t_ns)
        self._channels["joint_states"].log(m.JointStates(timestamp=stamp, joints=[
            m.JointState(name=n, position=q) for n, q in present.items()]), log_time=wall)
        if self.kinematics is not None:
            self._channels["tf"].log(m.FrameTransforms(transforms=[
                m.FrameTransform(timestamp=stamp, parent_frame_id=t.parent,
                                 child_frame_id=t.child,
                                 translation=m.Vector3(x=t.translation[0], y=t.translation[1],
                                                       z=t.translation[2]),
                                 rotation=m.Quaternion(x=t.rotation[0], y=t.rotation[1],
                                                       z=t.rotation[2], w=t.rotation[3]))
                for t in self.kinematics.transforms(present)]), log_time=wall)

    def _publish_frame(self, frame, topic: str, image: bool) -> None:
        wall = self._epoch + frame.t_ns
        if frame.contact is not None:
            self._camera_channel(topic, True).log(
                {"area": frame.contact.area, "intensity": frame.contact.intensity}, log_time=wall)
        channel = self._camera_channel(topic, False)
        if image and channel.has_sinks():  # JPEG costs: only for someone watching
            ok, jpg = cv2.imencode(".jpg", frame.color, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                channel.log(self._msgs.CompressedImage(
                    timestamp=self._stamp(frame.t_ns), frame_id=frame.camera,
                    data=jpg.tobytes(), format="jpeg"), log_time=wall)

    def _publish_event(self, kind: str, text: str, t_ns: int) -> None:
        m = self._msgs
        wall = self._epoch + t_ns
        self._channels["events"].log({"kind": kind, "text": text}, log_time=wall)
        level = {"fault": m.LogLevel.Error, "link": m.LogLevel.Warning,
                 "camera": m.LogLevel.Warning}.get(kind, m.LogLevel.Info)
        self._channels["log"].log(m.Log(timestamp=self._stamp(t_ns), level=level,
                                        message=text, name=kind), log_time=wall)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.stop()

    def __enter__(self) -> "FoxgloveView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _listener(fg, resend_urdf: threading.Event):
    """The server's listener: a client subscribing to /robot_description gets it at once
    (the protocol keeps no last message for late subscribers)."""
    from foxglove.websocket import ServerListener

    class Listener(ServerListener):
        def on_subscribe(self, client, channel) -> None:
            if channel.topic == "/robot_description":
                resend_urdf.set()
    return Listener()


def hand_model(hand) -> tuple[str | None, str]:
    """(URDF text of a hand file, "") or (None, why there is no 3D model)."""
    if hand is None:
        return None, "no hand file named (--hand): no 3D model"
    try:
        from dexlink.world.urdf import hand_urdf
    except ImportError as e:
        return None, "no 3D model: the world extra is not installed (%s)" % e
    try:
        return hand_urdf(hand), ""
    except (UserError, ValueError, KeyError) as e:
        return None, "no 3D model of %s: %s" % (hand, e)


def open_view(board, port: int = DEFAULT_PORT) -> tuple[FoxgloveView, str]:
    """A FoxgloveView of a connected board (dexlink.board.ConnectedBoard) with its hand's
    model, and a line saying where it is (and why there is no model, if there is none)."""
    urdf, why = hand_model(board.hand)
    names = board.joint_names or ["joint_%d" % j for j in range(board.link.board.n_joints)]
    view = FoxgloveView(names, urdf, port, hand=board.hand.stem if board.hand else "hand")
    text = ("Foxglove live view on %s (Foxglove: Open connection > Foxglove WebSocket; 3D "
            "panel: add a URDF layer from the topic /robot_description)" % view.url)
    return view, text + ("; " + why if why else "")


class LinkTap:
    """A link's messages (dexlink.record.recorder.follow_link feeds them) into a view: for
    a session, which has no recorder to tap."""

    def __init__(self, view: FoxgloveView):
        self.view = view

    def on_message(self, msg, t_ns: int) -> None:
        from dexlink.link import EVENT, fault_text

        if msg.name == "TELEMETRY":
            self.view.telemetry(msg, t_ns)
        elif msg.name == "FAULT":  # in the link's words, the joint by name when it knows it
            self.view.event("fault", getattr(msg, "description", None) or fault_text(msg), t_ns)
        elif msg.name == "LOG":
            self.view.event("log", msg.text.strip(), t_ns)
        elif msg.name == EVENT:
            self.view.event("link", "%s: %s" % (msg.kind, msg.detail) if msg.detail else msg.kind,
                            t_ns)
