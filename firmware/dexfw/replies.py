# What the board says about itself: the replies and reports the loop sends, each packed
# in place into the link's body (layouts from the catalog, never repeated here) and sent.
#
# Each takes the Firmware and reads its state. TELEMETRY and RAW_SAMPLE go out every few
# cycles: they allocate nothing, and one-argument global calls keep every frame on the
# stack (tests/test_vrig_frames.py). The others answer the host's queries.
import gc
import struct

from dexfw import FW_VERSION, mapping
from dexfw.link import head_format, head_size
from dexproto import catalog as C
from dexproto.cobsbuf import copy_into
from dexproto.frame import DROP_STATS_FIELDS, HeadPacker

# The heap counters; CPython (tests/fuzz/fuzz_firmware.py runs this loop) has none: 0.
HEAP_ALLOC = getattr(gc, "mem_alloc", lambda: 0)
HEAP_FREE = getattr(gc, "mem_free", lambda: 0)
MASK30 = C.COUNTER_MASK
TELEMETRY_HEAD = head_format(C.TELEMETRY)
TELEMETRY_HEAD_SIZE = head_size(C.TELEMETRY)  # the joints are packed after it
RAW_HEAD = head_format(C.RAW_SAMPLE)
RAW_HEAD_SIZE = head_size(C.RAW_SAMPLE)
JOINT_FORMAT = head_format(C.JOINT_CONFIG)
JOINT_SIZE = head_size(C.JOINT_CONFIG)
CONFIG_FORMAT = head_format(C.CONFIG)
CONFIG_SIZE = head_size(C.CONFIG)
HELLO_REPLY_HEAD = head_format(C.HELLO_REPLY)
HELLO_REPLY_HEAD_SIZE = head_size(C.HELLO_REPLY)
STATS = HeadPacker(C.STATS)  # packed by field name: STATS grows without breaking this
# A global function call takes one slot of a frame where struct.pack_into takes two: with
# 8 values that keeps _pack_telemetry_head's frame on the stack.
pack_into = struct.pack_into


def send_telemetry(fw):
    """TELEMETRY: loop timing, then per joint its angle, goal, present position, status."""
    _pack_telemetry_head(fw)
    jm = fw.jm
    jm.read_present()
    jm.mark_unread(C.ST_SERVO_TIMEOUT)  # not read back yet: flagged for the host
    fw.link.send(C.TELEMETRY, mapping.pack_joints_of(jm))


def _pack_telemetry_head(fw):
    pack_into(TELEMETRY_HEAD, fw.link.body, 0, fw.cycles, fw.sample_us,
              min(fw.cycle_us, 0xFFFF), min(fw.worst_us, 0xFFFF), fw.overruns & 0xFFFF,
              fw.mode)


def send_raw(fw):
    """RAW_SAMPLE (CALIBRATE mode): the raw encoder positions before calibration."""
    jm = fw.jm
    body = fw.link.body
    pack_into(RAW_HEAD, body, 0, fw.cycles, fw.sample_us)
    end = mapping.pack_raw(body, RAW_HEAD_SIZE, jm.raw, jm.enc_status, jm.n)
    fw.link.send(C.RAW_SAMPLE, end)


def send_hello_reply(fw):
    """HELLO_REPLY: versions, joint count, loop rate, capabilities, config CRC, name."""
    link = fw.link
    struct.pack_into(HELLO_REPLY_HEAD, link.body, 0, C.PROTOCOL_MAJOR, C.PROTOCOL_MINOR,
                     FW_VERSION[0], FW_VERSION[1], FW_VERSION[2], fw.jm.n, fw.hz,
                     fw.capabilities, fw.decimation, fw.config_crc)
    name = fw.board_name
    end = copy_into(name, 0, len(name), link.body, HELLO_REPLY_HEAD_SIZE)
    link.send(C.HELLO_REPLY, end)


def send_config(fw):
    """CONFIG: the loop settings in force."""
    struct.pack_into(CONFIG_FORMAT, fw.link.body, 0, fw.hz, fw.decimation, fw.watchdog_ms,
                     fw.watchdog_action)
    fw.link.send(C.CONFIG, CONFIG_SIZE)


def send_joint(fw, i):
    """JOINT_CONFIG: joint i's calibration and limits in force."""
    struct.pack_into(JOINT_FORMAT, fw.link.body, 0, *fw.jm.joint_values(i))
    fw.link.send(C.JOINT_CONFIG, JOINT_SIZE)


def send_stats(fw):
    """STATS: the link's and the loop's counters, and the heap."""
    link = fw.link
    r = link.reader
    body = link.body
    faults = fw.faults
    # Drivers count every failed read; the loop counts the ones it saw appear.
    timeouts = checksums = 0
    for bus in fw.servos:
        timeouts += getattr(bus, "timeouts", 0)
        checksums += getattr(bus, "bad_checksums", 0)
    STATS.clear(body)
    STATS.put(body, "rx_frames", r.frames)
    for i in range(len(DROP_STATS_FIELDS)):
        STATS.put(body, DROP_STATS_FIELDS[i], r.drops[i])
    STATS.put(body, "tx_frames", link.tx_frames)
    STATS.put(body, "tx_dropped", link.tx_dropped)
    STATS.put(body, "cycles", fw.cycles)
    STATS.put(body, "overruns", fw.overruns)
    STATS.put(body, "servo_timeouts", max(timeouts, faults.servo_timeouts) & MASK30)
    STATS.put(body, "servo_bad_checksums", max(checksums, faults.servo_bad_checksums) & MASK30)
    STATS.put(body, "worst_cycle_us", min(fw.worst_us, 0xFFFF))
    STATS.put(body, "cmd_applied", fw.once.applied)
    STATS.put(body, "cmd_repeats", fw.once.repeats)
    # Heap in use and free: a leak shows as heap_alloc creeping up over a long run.
    STATS.put(body, "heap_alloc", HEAP_ALLOC())
    STATS.put(body, "heap_free", HEAP_FREE())
    link.send(C.STATS, STATS.size)
