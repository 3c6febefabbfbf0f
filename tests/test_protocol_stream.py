"""The framing and the streaming decoders, host (stream.StreamDecoder) and board
(frame.FrameReader, run here under CPython), against hypothesis-drawn input."""
from __future__ import annotations

import struct
import zlib

import pytest
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dexproto import catalog, frame, stream
from support.protocol_samples import fixed_messages, messages

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunked(data: bytes, cuts: list[int]):
    """data split at the given chunk sizes (cycled), the way a serial port hands it over."""
    i = 0
    k = 0
    while i < len(data):
        n = max(1, cuts[k % len(cuts)]) if cuts else len(data)
        yield data[i:i + n]
        i += n
        k += 1


def board_decode(data: bytes, cuts=(), reader=None):
    """Run the board's FrameReader over data in chunks; return (reader, [(type, seq, body)])."""
    reader = reader or frame.FrameReader()
    out = []
    for chunk in chunked(data, list(cuts)):
        i = 0
        while True:
            i = reader.feed(chunk, i, len(chunk))
            if i < 0:
                break
            body = bytes(reader.payload[catalog.HEADER_SIZE:catalog.HEADER_SIZE + reader.body_len])
            out.append((reader.msg_type, reader.seq, body))
    return reader, out


def host_decode(data: bytes, cuts=(), decoder=None):
    decoder = decoder or stream.StreamDecoder()
    out = []
    for chunk in chunked(data, list(cuts)):
        out.extend(decoder.feed(chunk))
    return decoder, out


def as_triple(msg: stream.Message):
    payload = stream.encode_payload(msg)
    return payload[0], msg.seq, payload[catalog.HEADER_SIZE:]


def board_drops(reader) -> dict:
    return dict(zip(frame.DROP_NAMES, reader.drops))


def frame_of(payload: bytes, crc: int | None = None) -> bytes:
    """A frame around any payload, with its true CRC unless one is given."""
    crc = zlib.crc32(payload) if crc is None else crc
    return cobs.encode(payload + struct.pack("<I", crc)) + b"\x00"


def same(a: stream.Message, b: stream.Message) -> bool:
    return (a.name, a.fields, [tuple(i) for i in a.items], a.tail, a.seq) == \
        (b.name, b.fields, [tuple(i) for i in b.items], b.tail, b.seq)


# --- round trips -------------------------------------------------------------------------

@SETTINGS
@given(messages(), st.lists(st.integers(1, 64), max_size=8))
def test_every_message_round_trips_through_both_decoders(msg, cuts):
    wire = stream.encode(msg)
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    dec, got = host_decode(wire, cuts)
    assert len(got) == 1 and same(got[0], msg)
    assert dec.frames == 1 and dec.dropped == 0
    reader, triples = board_decode(wire, cuts)
    assert triples == [as_triple(msg)]


@SETTINGS
@given(messages())
def test_board_writer_makes_the_host_bytes(msg):
    w = frame.FrameWriter()
    w.seq = msg.seq
    body = stream.encode_payload(msg)[catalog.HEADER_SIZE:]
    w.body[:len(body)] = body
    assert bytes(w.finish(stream.SPECS_BY_NAME[msg.name].type, len(body))) == stream.encode(msg)
    assert w.seq == (msg.seq + 1) & 0xFFFF


def test_writer_pack_and_sequence_wrap():
    w = frame.FrameWriter()
    w.seq = 0xFFFF
    f = bytes(w.pack(catalog.SET_MODE, "<B", catalog.MODE_HOST))
    assert f == stream.encode(stream.make("SET_MODE", mode=catalog.MODE_HOST, seq=0xFFFF))
    assert w.seq == 0
    assert bytes(w.pack(catalog.HEARTBEAT, "")) == stream.encode(stream.make("HEARTBEAT", seq=0))


def test_writer_refuses_a_body_past_the_maximum():
    w = frame.FrameWriter()
    with pytest.raises(ValueError, match="maximum is %d" % frame.MAX_BODY):
        w.finish(catalog.LOG, frame.MAX_BODY + 1)
    assert len(w.finish(catalog.LOG, frame.MAX_BODY)) <= catalog.MAX_FRAME


# --- any input ------------------------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(1, 700), max_size=6))
def test_any_bytes_never_raise_never_yield_and_both_count_alike(data, cuts):
    dec, got = host_decode(data, cuts)
    reader, triples = board_decode(data, cuts)
    assert got == [] and triples == []  # nothing was sent, so nothing may come out
    assert dec.drops == board_drops(reader)


@SETTINGS
@given(st.lists(st.sampled_from([b"\x00", b"\x01", b"\xff", b"\x02\x01", b"\x01" * 300]), max_size=20),
       st.lists(st.integers(1, 50), max_size=4))
def test_structured_junk_never_yields(parts, cuts):
    data = b"".join(parts)
    dec, got = host_decode(data, cuts)
    reader, triples = board_decode(data, cuts)
    assert got == [] and triples == []
    assert dec.drops == board_drops(reader)


def delimited_segments(wire: bytes):
    """(offset, bytes) of each complete 0x00-terminated run of the stream, terminator included."""
    at = 0
    for part in wire.split(b"\x00")[:-1]:
        yield at, part + b"\x00"
        at += len(part) + 1


@st.composite
def damaged_streams(draw):
    """Valid frames interleaved with garbage, bit flips and truncations.

    Returns (wire, [(offset, frame bytes, message, sent intact)])."""
    sent = []
    wire = bytearray()
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["frame", "frame", "frame", "garbage", "flip", "truncate"]))
        if kind == "garbage":
            wire += draw(st.binary(min_size=1, max_size=80))
            continue
        msg = draw(messages())
        f = stream.encode(msg)
        at = len(wire)
        if kind == "flip":
            g = bytearray(f)
            g[draw(st.integers(0, len(g) - 1))] ^= 1 << draw(st.integers(0, 7))
            wire += g
        elif kind == "truncate":
            wire += f[:draw(st.integers(0, len(f) - 2))] + draw(st.sampled_from([b"", b"\x00"]))
        else:
            wire += f
        sent.append((at, f, msg, kind == "frame"))
    return bytes(wire), sent


@settings(SETTINGS, max_examples=80)
@given(damaged_streams(), st.lists(st.integers(1, 200), max_size=6))
def test_damaged_streams_recover_every_intact_frame(stream_and_sent, cuts):
    wire, sent = stream_and_sent
    frames = {f: msg for _, f, msg, _ in sent}
    # A frame can come out only where its exact bytes stand between two delimiters...
    recoverable = [(at, frames[seg]) for at, seg in delimited_segments(wire) if seg in frames]
    # ...and every frame sent intact right after a delimiter (or first) stands there.
    intact = {at for at, f, _, ok in sent if ok and (at == 0 or wire[at - 1] == 0)}
    assert intact <= {at for at, _ in recoverable}
    dec, got = host_decode(wire, cuts)
    assert [stream.encode(m) for m in got] == [stream.encode(m) for _, m in recoverable]
    reader, triples = board_decode(wire, cuts)
    assert triples == [as_triple(m) for _, m in recoverable]
    assert dec.drops == board_drops(reader)
    assert dec.frames == reader.frames == len(recoverable)


# --- drops by reason -------------------------------------------------------------------------

GOOD = stream.encode(stream.make("SET_MODE", mode=catalog.MODE_TELEOP, seq=9))
HELLO = stream.encode_payload(stream.make("HELLO", proto_major=1, proto_minor=0))


def bad_crc_frame():
    payload = stream.encode_payload(stream.make("TIME_SYNC", token=1234))
    return frame_of(payload, zlib.crc32(payload) ^ 0x00010000)


BAD_FRAMES = {
    "bad_cobs": b"\x05\x01\x00",
    "bad_crc": bad_crc_frame(),
    "oversize": frame_of(b"\x23" * (catalog.MAX_PAYLOAD + 1)),
    "unknown_type": frame_of(b"\xee\x01\x00"),
    "bad_length": frame_of(HELLO[:-1]),
    "no_terminator": b"\x55" * (catalog.MAX_FRAME + 1) + b"\x00",
}


@pytest.mark.parametrize("reason", frame.DROP_NAMES)
@pytest.mark.parametrize("cuts", [(), (1,), (7, 3)], ids=["whole", "bytewise", "7-3"])
def test_each_bad_frame_is_counted_by_its_reason_and_the_next_one_decodes(reason, cuts):
    wire = GOOD + BAD_FRAMES[reason] + GOOD
    dec, got = host_decode(wire, cuts)
    reader, triples = board_decode(wire, cuts)
    expect = {name: int(name == reason) for name in frame.DROP_NAMES}
    assert dec.drops == expect
    assert board_drops(reader) == expect
    assert [m.seq for m in got] == [9, 9] and len(triples) == 2


def test_short_payloads_are_bad_length():
    for raw in (b"", b"\x03", b"\x03\x00"):
        wire = frame_of(raw)
        dec, _ = host_decode(wire)
        reader, _ = board_decode(wire)
        assert dec.drops["bad_length"] == 1 == board_drops(reader)["bad_length"], raw


def test_a_line_that_never_ends_is_counted_once_as_it_overruns():
    run = b"\x55" * (3 * catalog.MAX_FRAME)
    dec, _ = host_decode(run, (100,))
    reader, _ = board_decode(run, (100,))
    assert dec.drops["no_terminator"] == 1 == reader.drops[frame.DROP_NO_TERMINATOR]
    # ...and the frame after the next delimiter decodes.
    assert len(host_decode(b"\x00" + GOOD, decoder=dec)[1]) == 1
    assert len(board_decode(b"\x00" + GOOD, reader=reader)[1]) == 1


def test_idle_delimiters_are_not_errors():
    dec, got = host_decode(b"\x00\x00" + GOOD + b"\x00\x00\x00" + GOOD)
    reader, triples = board_decode(b"\x00\x00" + GOOD + b"\x00\x00\x00" + GOOD)
    assert len(got) == 2 == len(triples)
    assert dec.dropped == 0 and sum(reader.drops) == 0


def test_largest_frames_fit_max_frame():
    big = max(fixed_messages(), key=lambda m: len(stream.encode_payload(m)))
    wire = stream.encode(big)
    assert len(wire) <= catalog.MAX_FRAME
    worst = frame_of(b"\x01" * catalog.MAX_PAYLOAD, crc=0x01010101)  # no zero: most COBS overhead
    assert len(worst) == catalog.MAX_FRAME
    assert len(host_decode(wire)[1]) == 1 and len(board_decode(wire)[1]) == 1


def test_board_reader_returns_the_index_after_each_frame():
    wire = GOOD + b"\x00" + GOOD
    reader = frame.FrameReader()
    first = reader.feed(wire, 0, len(wire))
    assert first == len(GOOD) and reader.msg_type == catalog.SET_MODE and reader.body_len == 1
    assert reader.feed(wire, first, len(wire)) == len(wire)
    assert reader.feed(wire, len(wire), len(wire)) == -1
    assert reader.feed(wire, 0, len(wire) + 100) == len(GOOD)  # an end past the buffer is clamped


def test_memoryview_input_is_accepted_by_the_host():
    assert len(stream.StreamDecoder().feed(memoryview(GOOD + GOOD))) == 2


# --- versions and encoding errors -----------------------------------------------------------

def hello_reply(major, minor=3):
    return stream.make("HELLO_REPLY", proto_major=major, proto_minor=minor, fw_major=0, fw_minor=1,
                       fw_patch=0, n_joints=22, loop_hz=1000, capabilities=0,
                       telemetry_decimation=10, config_crc=0, tail="virtual")


def test_hello_from_another_major_version_is_refused_naming_both():
    stream.check_hello(hello_reply(catalog.PROTOCOL_MAJOR))
    other = catalog.PROTOCOL_MAJOR + 1
    mine = "%d.%d" % (catalog.PROTOCOL_MAJOR, catalog.PROTOCOL_MINOR)
    with pytest.raises(stream.ProtocolError) as e:
        stream.check_hello(hello_reply(other))
    assert "board speaks %d.3" % other in str(e.value) and mine in str(e.value)
    with pytest.raises(stream.ProtocolError, match="host speaks 0.7.*this side speaks " + mine):
        stream.check_hello(stream.make("HELLO", proto_major=0, proto_minor=7))
    with pytest.raises(stream.ProtocolError, match="expected HELLO"):
        stream.check_hello(stream.make("HEARTBEAT"))
    # A minor difference is fine.
    stream.check_hello(stream.make("HELLO", proto_major=catalog.PROTOCOL_MAJOR, proto_minor=99))


@pytest.mark.parametrize("msg,words", [
    (stream.make("NOPE"), "unknown message 'NOPE'"),
    (stream.make("SET_MODE"), "SET_MODE needs field 'mode'"),
    (stream.make("SET_MODE", mode=1, speed=2), "SET_MODE has no field speed"),
    (stream.make("SET_MODE", mode=256), "SET_MODE"),
    (stream.make("SET_MODE", mode=1, items=[(1,)]), "SET_MODE has no per-joint items"),
    (stream.make("SET_MODE", mode=1, tail="x"), "SET_MODE has no trailing text"),
    (stream.make("TARGETS", items=[(1, 2)]), r"TARGETS items \(target_cdeg each\)"),
    (stream.make("TARGETS", items=[(40000,)]), "TARGETS items"),
    (stream.make("TARGETS", items=[(0,)] * 253), "over the %d-byte maximum" % catalog.MAX_PAYLOAD),
])
def test_encoding_errors_name_the_message_and_the_problem(msg, words):
    with pytest.raises(stream.ProtocolError, match=words):
        stream.encode(msg)


def test_parse_payload_errors():
    with pytest.raises(stream.ProtocolError, match="shorter than the header"):
        stream.parse_payload(b"\x01")
    with pytest.raises(stream.ProtocolError, match="unknown message type 0xee"):
        stream.parse_payload(b"\xee\x00\x00")
    with pytest.raises(stream.ProtocolError, match="HELLO with a 1-byte body"):
        stream.parse_payload(HELLO[:-1])


def test_message_accessors():
    msg = stream.parse_payload(stream.encode_payload(stream.make(
        "TELEMETRY", cycle=5, board_us=77, cycle_us=1000, worst_cycle_us=1200, overruns=0,
        mode=catalog.MODE_TELEOP, items=[(i, -i, 2 * i, 0) for i in range(22)])))
    assert msg.board_us == 77 and msg.column("goal_cdeg") == [-i for i in range(22)]
    log = stream.make("LOG", level=1, tail="héllo")
    assert stream.parse_payload(stream.encode_payload(log)).text == "héllo"
    with pytest.raises(AttributeError):
        msg.nope  # noqa: B018  (reading the attribute is what raises)


# --- the fuzz target's invariants (atheris runs them in `make fuzz`) -------------------------

def load_fuzz_target():
    import importlib.util

    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("fuzz_decoder", ROOT / "tests" / "fuzz" / "fuzz_decoder.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fuzz_target_holds_on_its_seeds_and_notices_a_broken_decoder(monkeypatch):
    fuzz = load_fuzz_target()
    seeds = fuzz.seeds()
    assert len(seeds) == 2 * len(stream.SPECS)
    for seed in seeds + [b"", b"\x00", b"\x01", b"\x03\x00\xfe\xfe\x01\x02\x03"]:
        fuzz.check(seed)
    real = stream.parse_payload
    monkeypatch.setattr(stream, "parse_payload", lambda p: real(p[:1] + b"\x07" + p[2:]))
    with pytest.raises(AssertionError):
        fuzz.check(seeds[0])
