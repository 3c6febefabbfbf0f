"""The host's link to a board: transport, decoding, requests, heartbeat, clock, statistics.

    with Link("/dev/ttyACM0") as link:          # or "socket://host:port", "loop://"
        print(link.board)                      # HELLO_REPLY, checked
        telemetry = link.subscribe("TELEMETRY")
        link.set_mode(catalog.MODE_TELEOP)
        msg = telemetry.get(timeout=1)         # a dexproto.stream.Message
        msg.host_ns                            # host monotonic ns at arrival
        link.clock.to_host_ns(msg.board_us, msg.host_ns)   # ... at sampling

`Link` is a facade over small parts, each with one job:

    transport      the port: open/close, the reader thread, the locked write, and the one
                   place a write failure is handled (bytes only, like serial.threaded)
    requests       sequence numbers (frames free of Ctrl-C), the pending table, retries,
                   apply-once (a retry after silence repeats the very frame)
    handshake      HELLO, and what to tell the user when something else answers
    keeper         the second thread: heartbeat, TIME_SYNC probes (timesync), silence,
                   reconnection with re-handshake and re-apply, board reset detection
    subscriptions  the board's messages and the link's events to bounded queues
    stats          counters, rates and the snapshot a dashboard shows
    faults         FAULT messages in words, with the hand's names

Threads: the reader decodes frames and hands them to waiting requests and subscribers;
the keeper sends heartbeats (HOST mode), TIME_SYNC probes, and reconnects a board that
went away, re-handshaking and re-applying the session's config, joints and mode.
"""
from .errors import HandshakeError, LinkDown, LinkError, NackError, RequestTimeout
from .facade import Link
from .faults import MOTOR_FAULTS, fault_text, fault_where
from .handshake import FLASH_HINT, describe_board
from .keeper import QUIET_PROBE_S, QUIET_S
from .requests import CTRL_C, REPLY_OF
from .settings import DEFAULT_BAUD, LinkSettings
from .stats import LinkStats
from .subscriptions import EVENT, LinkEvent, Subscription
from .timesync import SYNC_PROBES_KEPT
from .transport import Transport

__all__ = [
    "CTRL_C", "DEFAULT_BAUD", "EVENT", "FLASH_HINT", "MOTOR_FAULTS", "QUIET_PROBE_S", "QUIET_S",
    "REPLY_OF", "SYNC_PROBES_KEPT", "HandshakeError", "Link", "LinkDown", "LinkError",
    "LinkEvent", "LinkSettings", "LinkStats", "NackError", "RequestTimeout", "Subscription",
    "Transport", "describe_board", "fault_text", "fault_where",
]
