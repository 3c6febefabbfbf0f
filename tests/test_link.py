"""dexlink.link against a MicroPython board behind a real pseudo-terminal."""
from __future__ import annotations

import os
import pty
import time
import tty

import pytest

from dexlink.link import (
    EVENT,
    HandshakeError,
    Link,
    LinkDown,
    LinkError,
    NackError,
    RequestTimeout,
    Transport,
)
from dexproto import catalog
from dexproto.stream import make
from support.fakeboard import FakeBoard
from support.waiting import wait_for, wait_until

pytestmark = pytest.mark.micropython


def test_handshake_requests_and_telemetry(tmp_path):
    with FakeBoard(tmp_path, joints=3) as board, Link(board.port) as link:
        assert link.board.n_joints == 3 and link.board.text == "fakeboard"
        tele = link.subscribe("TELEMETRY")
        ack = link.set_mode(catalog.MODE_TELEOP)
        assert ack.name == "ACK" and ack.acked_type == catalog.SET_MODE
        link.set_config(500, 2, 150, catalog.WATCHDOG_TORQUE_OFF)
        cfg = link.get_config()
        assert (cfg.loop_hz, cfg.telemetry_decimation, cfg.watchdog_ms, cfg.watchdog_action) == (
            500, 2, 150, catalog.WATCHDOG_TORQUE_OFF)
        m = wait_for(tele, lambda m: m.mode == catalog.MODE_TELEOP)
        assert m is not None and len(m.items) == 3
        # stamped on arrival, on the host's monotonic clock
        assert 0 < time.monotonic_ns() - m.host_ns < 2e9
        # HOST-mode targets reach the board (it echoes them as goals)
        link.set_mode(catalog.MODE_HOST)
        link.send_targets([111, -222, 333])
        m = wait_for(tele, lambda m: m.column("goal_cdeg") == [111, -222, 333])
        assert m is not None


def test_nack_names_reason_and_field(tmp_path):
    with FakeBoard(tmp_path) as board, Link(board.port) as link:
        with pytest.raises(NackError) as e:
            link.set_mode(9)
        assert e.value.field == "mode" and e.value.error == catalog.ERR_BAD_VALUE
        assert "bad value" in str(e.value) and "mode" in str(e.value)
        with pytest.raises(NackError, match="loop_hz"):
            link.set_config(0, 1, 100)
        assert link.mode is None and link.config is None  # refused settings are not kept
        with pytest.raises(NackError, match="unknown type"):
            link.request(make("GET_STATS"))


def test_version_mismatch_is_a_clear_error(tmp_path):
    with FakeBoard(tmp_path, telemetry_hz=0, proto_major=7) as board:
        # proto 7 board: NACKs our HELLO with a version mismatch
        with pytest.raises(HandshakeError, match="version mismatch.*dexlink flash"):
            Link(board.port, handshake_timeout=1).open()


def test_repl_and_garbage_are_named(tmp_path):
    with FakeBoard(tmp_path, garbage=b"MicroPython v1.24 on rp2\r\n>>> ", mute=True) as board:
        with pytest.raises(HandshakeError) as e:
            Link(board.port, handshake_timeout=0.6).open()
    assert "MicroPython REPL" in str(e.value) and "dexlink flash" in str(e.value)


def test_nothing_answers(tmp_path):
    with FakeBoard(tmp_path, mute=True) as board:  # a board that never answers
        with pytest.raises(HandshakeError, match="no answer from .*dexlink flash --port"):
            Link(board.port, handshake_timeout=0.5).open()
    with pytest.raises(LinkError, match="cannot open"):
        Link(str(tmp_path / "nothing-here")).open()


def test_heartbeat_only_in_host_mode(tmp_path):
    with FakeBoard(tmp_path) as board, Link(board.port, heartbeat_s=0.05) as link:
        tele = link.subscribe("TELEMETRY")
        link.set_mode(catalog.MODE_TELEOP)
        time.sleep(0.4)
        before = wait_for(tele, lambda m: True).overruns  # heartbeats the board counted
        assert before == 0
        link.set_mode(catalog.MODE_HOST)
        time.sleep(0.6)
        tele.drain()
        after = wait_for(tele, lambda m: True).overruns
        assert after >= 5  # about 12 at 50 ms; a loaded machine still sends several


def test_settings_changed_on_the_link_reach_its_requests(tmp_path):
    """link.timeout and link.retries are the ones the requests use, also when set late."""
    with FakeBoard(tmp_path, telemetry_hz=0) as board, Link(board.port) as link:
        link.timeout, link.retries = 0.05, 1
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout, match="HEARTBEAT after 2 tries of 50 ms"):
            link.request(make("HEARTBEAT"))  # the board takes it and never answers
        assert time.monotonic() - t0 < 1.0
        assert link.stats_snapshot()["timeouts"] == 2 and link.stats_snapshot()["retries"] == 1


def test_a_failed_write_marks_the_port_lost():
    """The far end of a pseudo-terminal goes away: the write fails with LinkDown, and the
    port is lost (a Link's keeper then reconnects), in the one place writes fail."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    port = Transport(os.ttyname(slave))
    port.open()
    try:
        port.write(b"\x00")
        assert os.read(master, 1) == b"\x00" and port.alive
        os.close(master)
        os.close(slave)
        with pytest.raises(LinkDown, match="write failed"):
            port.write(b"\x00")
        assert port.lost and port.is_open and not port.alive
    finally:
        port.close()
    assert not port.is_open


def test_frames_avoid_ctrl_c_where_a_sequence_number_can():
    """A frame reaching a booting board must not hold 0x03 (Ctrl-C) where the sequence
    number can avoid it; a body holding 0x03 itself goes at once with the next number."""
    import threading

    from dexlink.link.requests import Sender
    from dexlink.link.stats import LinkStats
    from dexproto.stream import StreamDecoder

    port = Transport("loop://")
    port.open()
    got, ended = bytearray(), threading.Event()
    port.start_reader(lambda data, _ns: got.extend(data), ended)
    try:
        sender = Sender(port, LinkStats())
        plain = [sender.send(make("GET_STATS")) for _ in range(200)]
        goals = make("TARGETS", items=[(3,)] * 16)  # 0x03 in every goal: no number helps
        held = [sender.send(goals) for _ in range(3)]
        assert wait_until(lambda: len(StreamDecoder().feed(bytes(got))) == 203, timeout=5)
    finally:
        ended.set()
        port.close()
    frames = bytes(got).split(b"\x00")
    assert sum(b"\x03" in f for f in frames) == 3  # only the goals' frames hold one
    msgs = StreamDecoder().feed(bytes(got))
    assert [m.seq for m in msgs] == plain + held
    assert held == [(plain[-1] + 1 + k) & 0xFFFF for k in range(3)]


def test_statistics_count_drops_and_gaps(tmp_path):
    with FakeBoard(tmp_path, telemetry_hz=200, corrupt_every=10) as board, Link(board.port) as link:
        time.sleep(1.2)
        s = link.stats_snapshot()
    assert s["frames_per_s"] > 100 and s["bytes_per_s"] > 1000
    assert s["dropped"] >= 5 and s["resyncs"] == s["dropped"]
    assert s["seq_gaps"] >= 5 and s["lost_frames"] >= s["seq_gaps"]
    assert s["rtt_ms"] is not None and s["sync_rtt_ms"] is not None


def test_unplug_is_reported_and_session_comes_back(tmp_path):
    board = FakeBoard(tmp_path)
    board.plug()
    try:
        link = Link(board.port, silence_s=5)
        link.open()
        events = link.subscribe(EVENT)
        tele = link.subscribe("TELEMETRY")
        link.set_config(800, 1, 300)
        link.set_mode(catalog.MODE_TELEOP)
        board.unplug()
        t0 = time.monotonic()
        gone = wait_for(events, lambda e: e.kind == "disconnected")
        assert gone is not None and time.monotonic() - t0 < 1.0
        assert not link.connected
        board.plug()  # a fresh board: IDLE and default config
        back = wait_for(events, lambda e: e.kind == "reconnected", timeout=5)
        assert back is not None and "fakeboard" in back.detail
        # the session's mode and config were put back on the new board
        assert wait_for(tele, lambda m: m.mode == catalog.MODE_TELEOP) is not None
        assert link.get_config().loop_hz == 800
        assert link.stats.disconnects == 1 and link.stats.reconnects == 1
        link.close()
    finally:
        board.unplug()


def test_socket_url(tmp_path):
    """socket://host:port (a board behind a network serial bridge) works like a device path."""
    import os
    import select
    import socket
    import threading

    with FakeBoard(tmp_path) as board:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        stop = threading.Event()

        def bridge():  # TCP <-> the board's pty, byte for byte
            conn, _ = server.accept()
            fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY)
            try:
                while not stop.is_set():
                    ready, _, _ = select.select([conn, fd], [], [], 0.05)
                    if conn in ready:
                        data = conn.recv(4096)
                        if not data:
                            break
                        os.write(fd, data)
                    if fd in ready:
                        conn.sendall(os.read(fd, 4096))
            finally:
                os.close(fd)
                conn.close()

        t = threading.Thread(target=bridge, daemon=True)
        t.start()
        try:
            with Link("socket://127.0.0.1:%d" % port) as link:
                assert link.board.text == "fakeboard"
                assert link.get_config().loop_hz == 1000
        finally:
            stop.set()
            t.join(2)
            server.close()
