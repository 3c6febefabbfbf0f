# The fixed-rate loop: sample encoders -> map -> slew-rate limit -> drive servos ->
# telemetry, with the host's commands read between cycles without blocking.
#
# Nothing in cycle() allocates once warmed up (tests/test_firmware_alloc.py holds it to
# zero bytes per cycle under the MicroPython interpreter): arrays made in __init__,
# replies packed in place, no floats, no slices, no varargs.
import gc
import struct

from dexfw import FW_VERSION, config, mapping
from dexfw.joints import JointMap
from dexfw.link import Link
from dexproto import catalog as C
from dexproto.cobsbuf import copy_into
from dexproto.frame import DROP_STATS_FIELDS, HeadPacker
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here

# The heap counters; CPython (tests/fuzz/fuzz_firmware.py runs this loop) has none: 0.
HEAP_ALLOC = getattr(gc, "mem_alloc", lambda: 0)
HEAP_FREE = getattr(gc, "mem_free", lambda: 0)
MASK30 = C.COUNTER_MASK  # counters stay small ints on 32-bit ports
SERVO_BAD = C.ST_SERVO_TIMEOUT | C.ST_SERVO_BAD_CHECKSUM | C.ST_SERVO_ERROR
FAULT_GAP_US = 100000  # the same fault code is sent at most every 100 ms
CONFIG_FAULT_US = 1000000  # an unconfigured board repeats FAULT(config) every second
DEFAULT_LOOP = (1000, 10, 250, C.WATCHDOG_HOLD)
# Reply layouts come from the catalog, never repeated here.
TELEMETRY_HEAD = C.BY_TYPE[C.TELEMETRY][3]
TELEMETRY_HEAD_SIZE = struct.calcsize(TELEMETRY_HEAD)
RAW_HEAD = C.BY_TYPE[C.RAW_SAMPLE][3]
RAW_HEAD_SIZE = struct.calcsize(RAW_HEAD)
JOINT_FORMAT = C.BY_TYPE[C.JOINT_CONFIG][3]
JOINT_SIZE = struct.calcsize(JOINT_FORMAT)
CONFIG_FORMAT = C.BY_TYPE[C.CONFIG][3]
CONFIG_SIZE = struct.calcsize(CONFIG_FORMAT)
SET_CONFIG_FORMAT = C.BY_TYPE[C.SET_CONFIG][3]
HELLO_REPLY_HEAD = C.BY_TYPE[C.HELLO_REPLY][3]
HELLO_REPLY_HEAD_SIZE = struct.calcsize(HELLO_REPLY_HEAD)
# A global function call takes one slot of a frame where struct.pack_into takes two: with
# 8 values that keeps _pack_telemetry_head's frame on the stack.
pack_into = struct.pack_into
STATS = HeadPacker(C.STATS)  # packed by field name: STATS grows without breaking this
# A command the host retries after a lost ACK comes again with the same sequence number
# (and so the same CRC): it is ACKed again, not applied twice. One slot per kind of
# command (SET_JOINT: one per joint) remembers the last one applied.
SLOT_MODE = 0
SLOT_CONFIG = 1
SLOT_TARGETS = 2
SLOT_JOINT = 3  # + joint index
# An older sequence number than the slot's, within this many received frames of it, is a
# late retry of a command already superseded: ACKed, never applied (nothing goes
# backwards). Further apart, 16-bit sequence numbers no longer order: it is new.
STALE_FRAMES = 64


class Firmware:
    """The board's loop. cfg=None (a refused config) runs an unconfigured board that
    answers the host, repeats FAULT(config) and never leaves IDLE."""

    def __init__(self, hal, console, cfg=None, encoders=(), servos=(), config_crc=0,
                 board_name=b"", config_error=None):
        self.hal = hal
        self.link = Link(console, hal.ticks_us)
        self.encoders = tuple(encoders)
        self.servos = tuple(servos)
        self.config_crc = config_crc
        self.board_name = board_name
        self.config_error = config_error
        if cfg is None:
            self.jm = JointMap((), (), None, DEFAULT_LOOP[0])
            self._set_loop(DEFAULT_LOOP)
        else:
            loop = cfg["loop"]
            self.jm = JointMap(cfg["joints"], cfg["motors"], cfg["coupling"], loop["hz"])
            self._set_loop((loop["hz"], loop["telemetry_decimation"], loop["watchdog_ms"],
                            loop["watchdog_action"]))
        self.mode = C.MODE_IDLE
        self.torque_on = False
        self.running = True
        self.cycles = 0
        self.overruns = 0
        self.cycle_us = 0
        self.worst_us = 0
        self.sample_us = 0
        self.watchdog_tripped = False
        self.last_rx_us = hal.ticks_us()
        readback = False
        for bus in self.servos:
            if getattr(bus, "READBACK", True):
                readback = True
            else:
                for m in bus.joints:
                    self.jm.blind[m] = 1
        # Telemetry packs the joints straight into the link's body, after its head.
        self.jm.pack_body = self.link.body
        self.jm.pack_at = TELEMETRY_HEAD_SIZE
        self.prev_bad = bytearray(self.jm.n)
        self.prev_servo = bytearray(self.jm.nm)
        self.servo_timeouts = 0
        self.servo_bad_checksums = 0
        self.last_fault_us = [0] * len(C.FAULT_NAMES)
        self.fault_sent = bytearray(len(C.FAULT_NAMES))
        self._decimate = 0
        self._overruns_reported = 0
        n_slots = SLOT_JOINT + config.MAX_JOINTS
        self.slot_used = bytearray(n_slots)
        self.slot_seq = [0] * n_slots
        self.slot_frame = [0] * n_slots  # link.reader.frames when it was applied
        self.slot_crc = bytearray(4 * n_slots)
        self.cmd_applied = 0  # SET_MODE / SET_CONFIG / SET_JOINT applied since boot
        self.cmd_repeats = 0  # retried or superseded commands ACKed without applying
        viper = mapping.map_exo is not mapping.map_exo_py
        self.capabilities = ((C.CAP_VIPER if viper else 0)
                             | (C.CAP_SERVO_READBACK if readback else 0)
                             | (C.CAP_COUPLING if self.jm.coupled else 0)
                             | (C.CAP_VIRTUAL if getattr(hal, "VIRTUAL", False) else 0))

    def _set_loop(self, values):
        self.hz, self.decimation, self.watchdog_ms, self.watchdog_action = values
        self.period_us = 1000000 // self.hz
        self.watchdog_us = self.watchdog_ms * 1000
        self.jm.set_rate(self.hz)

    # ---- one cycle -------------------------------------------------------------------
    # A cycle is split in steps small enough that each call's frame stays on the stack
    # (MicroPython puts a bigger one on the heap: an allocation per call,
    # tests/test_vrig_frames.py).
    def cycle(self, now):
        """One loop cycle at board time now (when sampling starts)."""
        self.sample_us = now
        self._commands()
        self._sense(now)
        mode = self.mode
        if mode == C.MODE_TELEOP:
            self.jm.follow_exo()
        elif mode == C.MODE_HOST:
            self._watchdog(now)
        if self.torque_on:
            self._drive()
        self._poll_servos()
        self._check_servos(now)
        self.cycles = (self.cycles + 1) & MASK30
        self._report(mode)
        if self.config_error is not None:
            self._fault_every(now, C.FAULT_CONFIG, CONFIG_FAULT_US)

    def _sense(self, now):
        """Encoders -> joint angles, and FAULT on an encoder that went bad."""
        for enc in self.encoders:
            enc.sample(self.jm.raw, self.jm.enc_status)
        self.jm.map_exo()
        self._check_encoders(now)

    def _drive(self):
        jm = self.jm
        jm.slew()
        jm.drive()
        for bus in self.servos:
            bus.write_goals(jm.servo_goal)

    def _poll_servos(self):
        jm = self.jm
        for bus in self.servos:
            bus.poll(jm.present, jm.servo_status)

    def _report(self, mode):
        """Telemetry (RAW_SAMPLE when calibrating) every `decimation` cycles."""
        self._decimate += 1
        if self._decimate >= self.decimation:
            self._decimate = 0
            if mode == C.MODE_CALIBRATE:
                self._send_raw()
            else:
                self._send_telemetry()

    def _watchdog(self, now):
        jm = self.jm
        if self.watchdog_tripped:
            return
        if self.hal.ticks_diff(now, self.last_rx_us) > self.watchdog_us:
            self.watchdog_tripped = True
            self.link.fault(now, C.FAULT_WATCHDOG, C.NO_JOINT, self.watchdog_ms)
            if self.watchdog_action == C.WATCHDOG_TORQUE_OFF:
                self.set_mode(C.MODE_IDLE)
            else:
                jm.hold()
            return
        jm.follow_host()

    def _check_encoders(self, now):
        """FAULT when a joint's encoder goes bad (its goal is held by map/follow)."""
        i = self._encoder_change(0)
        while i >= 0:
            self._encoder_changed(now, i)
            i = self._encoder_change(i + 1)

    def _encoder_change(self, start):
        """The first joint from start whose encoder bits changed, or -1."""
        return mapping.first_change(self.jm.flags, self.prev_bad, mapping.ENCODER_BAD, start,
                                    self.jm.n)

    def _encoder_changed(self, now, i):
        bad = self.jm.flags[i] & mapping.ENCODER_BAD
        self.prev_bad[i] = bad
        if bad:
            self._fault_limited(now, C.FAULT_ENCODER if bad & C.ST_ENCODER_ERROR
                                else C.FAULT_MAGNET, i, bad)

    def _check_servos(self, now):
        """Count servo timeouts / bad checksums / errors as they appear; FAULT each kind."""
        m = self._servo_change(0)
        while m >= 0:
            self._servo_changed(now, m)
            m = self._servo_change(m + 1)

    def _servo_change(self, start):
        """The first motor from start whose servo's bad bits changed, or -1."""
        return mapping.first_change(self.jm.servo_status, self.prev_servo, SERVO_BAD, start,
                                    self.jm.nm)

    def _servo_changed(self, now, m):
        s = self.jm.servo_status[m] & SERVO_BAD
        new = s & ~self.prev_servo[m]
        self.prev_servo[m] = s
        if new & C.ST_SERVO_TIMEOUT:
            self.servo_timeouts = (self.servo_timeouts + 1) & MASK30
            self._fault_limited(now, C.FAULT_SERVO_TIMEOUT, m, s)
        if new & C.ST_SERVO_BAD_CHECKSUM:
            self.servo_bad_checksums = (self.servo_bad_checksums + 1) & MASK30
            self._fault_limited(now, C.FAULT_SERVO_CHECKSUM, m, s)
        if new & C.ST_SERVO_ERROR:
            self._fault_limited(now, C.FAULT_SERVO_ERROR, m, s)

    def _fault_limited(self, now, code, joint, detail):
        """A FAULT, unless one with this code went out less than FAULT_GAP_US ago."""
        self._fault_every(now, code, FAULT_GAP_US, joint, detail)

    def _fault_every(self, now, code, gap_us, joint=C.NO_JOINT, detail=0):
        if self.fault_sent[code] and self.hal.ticks_diff(now, self.last_fault_us[code]) < gap_us:
            return
        self.fault_sent[code] = 1
        self.last_fault_us[code] = now
        self.link.fault(now, code, joint, detail)

    def _send_telemetry(self):
        self._pack_telemetry_head()
        self.jm.read_present()
        self.jm.mark_unread(C.ST_SERVO_TIMEOUT)  # not read back yet: flagged for the host
        self.link.send(C.TELEMETRY, mapping.pack_joints_of(self.jm))

    def _pack_telemetry_head(self):
        pack_into(TELEMETRY_HEAD, self.link.body, 0, self.cycles, self.sample_us,
                         min(self.cycle_us, 0xFFFF), min(self.worst_us, 0xFFFF),
                         self.overruns & 0xFFFF, self.mode)

    def _send_raw(self):
        jm = self.jm
        body = self.link.body
        struct.pack_into(RAW_HEAD, body, 0, self.cycles, self.sample_us)
        end = mapping.pack_raw(body, RAW_HEAD_SIZE, jm.raw, jm.enc_status, jm.n)
        self.link.send(C.RAW_SAMPLE, end)

    # ---- modes and safety ------------------------------------------------------------
    def set_mode(self, mode):
        """Switch mode; False when the hand's position is not known yet (try again)."""
        if mode == C.MODE_TELEOP or mode == C.MODE_HOST:
            if not self.torque_on:
                if not self.jm.goals_from_present():
                    return False
                self.jm.drive()
                for bus in self.servos:
                    bus.write_goals(self.jm.servo_goal)
                self._torque(True)
            else:
                self.jm.hold()
                for i in range(self.jm.n):
                    self.jm.host[i] = self.jm.goal[i]
            self.watchdog_tripped = False
            self.last_rx_us = self.hal.ticks_us()
        else:
            self._torque(False)
        self.mode = mode
        return True

    def _torque(self, on):
        for bus in self.servos:
            bus.torque(on)
        self.torque_on = on

    def estop(self):
        """Torque off at once and IDLE."""
        self._torque(False)
        self.mode = C.MODE_IDLE
        self.link.fault(self.hal.ticks_us(), C.FAULT_ESTOP, C.NO_JOINT, 0)

    # ---- commands --------------------------------------------------------------------
    def _commands(self):
        link = self.link
        link.start_cycle()
        while True:
            t = link.next_frame()
            if not t:
                return
            self.last_rx_us = link.rx_us
            self._handle(t, link.reader.seq)

    def _repeat(self, slot, t, seq, idempotent=False):
        """True (and ACKed) if this command is a retry of, or older than, the one applied
        last in its slot: it must not be applied (again). An idempotent command (TARGETS)
        is only kept from going backwards."""
        if not self.slot_used[slot]:
            return False
        ahead = (seq - self.slot_seq[slot]) & 0xFFFF
        if ahead == 0:
            if idempotent:
                return False
            if not self._same_crc(slot << 2):
                return False  # same number, other content: a new host counting from 0
        elif ahead < 0x8000 or (((self.link.reader.frames - self.slot_frame[slot]) & MASK30)
                                > STALE_FRAMES):
            return False
        self.cmd_repeats = (self.cmd_repeats + 1) & MASK30
        self.link.ack(t, seq)
        return True

    def _applied(self, slot, seq, counted=True):
        """Remember the command just applied in its slot (its seq, CRC, arrival)."""
        # The received frame's CRC (4 bytes after its body) into the slot's 4 bytes.
        copy_into(self.link.payload, BODY + self.link.reader.body_len,
                  BODY + self.link.reader.body_len + 4, self.slot_crc, slot << 2)
        self.slot_used[slot] = 1
        self.slot_seq[slot] = seq
        self.slot_frame[slot] = self.link.reader.frames
        if counted:
            self.cmd_applied = (self.cmd_applied + 1) & MASK30

    def _same_crc(self, k):
        """True when the received frame's CRC equals the 4 bytes at slot_crc[k]."""
        p = self.link.payload
        at = BODY + self.link.reader.body_len  # the frame's CRC
        crc = self.slot_crc
        return (p[at] == crc[k] and p[at + 1] == crc[k + 1] and p[at + 2] == crc[k + 2]
                and p[at + 3] == crc[k + 3])

    def _forget_commands(self):
        """A new session (HELLO): its host numbers its frames afresh."""
        for i in range(len(self.slot_used)):
            self.slot_used[i] = 0

    def _handle(self, t, seq):
        link = self.link
        if t == C.TARGETS:
            self._targets(seq)
        elif t == C.HEARTBEAT:
            link.ack(t, seq)
        elif t == C.TIME_SYNC:
            link.time_sync_reply()
        elif t == C.ESTOP:
            self.estop()
            link.ack(t, seq)
        elif t == C.SET_MODE:
            self._set_mode_cmd(seq)
        elif t == C.HELLO:
            self._hello(seq)
        elif t == C.GET_STATS:
            self._stats()
        elif t == C.GET_CONFIG:
            self._send_config()
        elif t == C.SET_CONFIG:
            self._set_config(seq)
        elif t == C.GET_JOINT:
            self._get_joint(seq)
        elif t == C.SET_JOINT:
            self._set_joint(seq)
        elif t == C.REPL:
            link.ack(t, seq)
            self.running = False
        else:
            link.nack(t, seq, C.ERR_UNKNOWN_TYPE)

    def _targets(self, seq):
        link = self.link
        n = link.reader.body_len >> 1
        if n != self.jm.n:
            link.nack(C.TARGETS, seq, C.ERR_BAD_LENGTH)
        elif self.mode != C.MODE_HOST:
            link.nack(C.TARGETS, seq, C.ERR_BAD_MODE)
        elif not self._repeat(SLOT_TARGETS, C.TARGETS, seq, True):
            self.jm.set_host_targets(link.payload, BODY, n)
            self.watchdog_tripped = False
            self._applied(SLOT_TARGETS, seq, False)
            link.ack(C.TARGETS, seq)

    def _set_mode_cmd(self, seq):
        link = self.link
        mode = link.payload[BODY]
        if mode >= len(C.MODE_NAMES):
            link.nack(C.SET_MODE, seq, C.ERR_BAD_VALUE, 0)
        elif self.config_error is not None and mode != C.MODE_IDLE:
            link.nack(C.SET_MODE, seq, C.ERR_BAD_MODE, 0)
        elif self._repeat(SLOT_MODE, C.SET_MODE, seq):
            return
        elif not self.set_mode(mode):
            link.nack(C.SET_MODE, seq, C.ERR_BUSY, 0)
        else:
            self._applied(SLOT_MODE, seq)
            link.ack(C.SET_MODE, seq)

    def _hello(self, seq):
        link = self.link
        major = link.payload[BODY]
        if major != C.PROTOCOL_MAJOR:
            # NACK.field carries the board's major version: the host can name both.
            link.nack(C.HELLO, seq, C.ERR_VERSION, C.PROTOCOL_MAJOR)
            return
        self._forget_commands()
        struct.pack_into(HELLO_REPLY_HEAD, link.body, 0, C.PROTOCOL_MAJOR, C.PROTOCOL_MINOR,
                         FW_VERSION[0], FW_VERSION[1], FW_VERSION[2], self.jm.n, self.hz,
                         self.capabilities, self.decimation, self.config_crc)
        name = self.board_name
        end = copy_into(name, 0, len(name), link.body, HELLO_REPLY_HEAD_SIZE)
        link.send(C.HELLO_REPLY, end)

    def _stats(self):
        link = self.link
        r = link.reader
        body = link.body
        # Drivers count every failed read; the loop counts the ones it saw appear.
        timeouts = checksums = 0
        for bus in self.servos:
            timeouts += getattr(bus, "timeouts", 0)
            checksums += getattr(bus, "bad_checksums", 0)
        STATS.clear(body)
        STATS.put(body, "rx_frames", r.frames)
        for i in range(len(DROP_STATS_FIELDS)):
            STATS.put(body, DROP_STATS_FIELDS[i], r.drops[i])
        STATS.put(body, "tx_frames", link.tx_frames)
        STATS.put(body, "tx_dropped", link.tx_dropped)
        STATS.put(body, "cycles", self.cycles)
        STATS.put(body, "overruns", self.overruns)
        STATS.put(body, "servo_timeouts", max(timeouts, self.servo_timeouts) & MASK30)
        STATS.put(body, "servo_bad_checksums", max(checksums, self.servo_bad_checksums) & MASK30)
        STATS.put(body, "worst_cycle_us", min(self.worst_us, 0xFFFF))
        STATS.put(body, "cmd_applied", self.cmd_applied)
        STATS.put(body, "cmd_repeats", self.cmd_repeats)
        # Heap in use and free: a leak shows as heap_alloc creeping up over a long run.
        STATS.put(body, "heap_alloc", HEAP_ALLOC())
        STATS.put(body, "heap_free", HEAP_FREE())
        link.send(C.STATS, STATS.size)

    def _send_config(self):
        struct.pack_into(CONFIG_FORMAT, self.link.body, 0, self.hz, self.decimation,
                         self.watchdog_ms, self.watchdog_action)
        self.link.send(C.CONFIG, CONFIG_SIZE)

    def _set_config(self, seq):
        values = self.link.unpack(SET_CONFIG_FORMAT)
        bad = config.bad_loop_field(values)
        if bad >= 0:
            self.link.nack(C.SET_CONFIG, seq, C.ERR_BAD_VALUE, bad)
            return
        if self._repeat(SLOT_CONFIG, C.SET_CONFIG, seq):
            return
        self._set_loop(values)
        self._applied(SLOT_CONFIG, seq)
        self.link.ack(C.SET_CONFIG, seq)

    def _get_joint(self, seq):
        i = self.link.payload[BODY]
        if i >= self.jm.n:
            self.link.nack(C.GET_JOINT, seq, C.ERR_BAD_VALUE, 0)
            return
        struct.pack_into(JOINT_FORMAT, self.link.body, 0, *self.jm.joint_values(i))
        self.link.send(C.JOINT_CONFIG, JOINT_SIZE)

    def _set_joint(self, seq):
        values = self.link.unpack(JOINT_FORMAT)
        bad = config.bad_joint_field(values, self.jm.n)
        if bad >= 0:
            self.link.nack(C.SET_JOINT, seq, C.ERR_BAD_VALUE, bad)
            return
        if self._repeat(SLOT_JOINT + values[0], C.SET_JOINT, seq):
            return
        self.jm.set_joint(*values)
        self.jm.limit_goals()
        self._applied(SLOT_JOINT + values[0], seq)
        self.link.ack(C.SET_JOINT, seq)

    # ---- timing ----------------------------------------------------------------------
    def run(self, max_cycles=0):
        """Cycles on hal.ticks_us deadlines until REPL (or max_cycles, when given)."""
        hal = self.hal
        ticks_us = hal.ticks_us
        ticks_diff = hal.ticks_diff
        deadline = ticks_us()
        count = 0
        while self.running:
            start = ticks_us()
            self.cycle(start)
            end = ticks_us()
            self._account(ticks_diff(end, start))
            deadline = hal.ticks_add(deadline, self.period_us)
            wait = ticks_diff(deadline, end)
            if wait > 0:
                hal.sleep_us(wait)
            elif wait < 0:
                self.overruns = (self.overruns + 1) & MASK30
                self._report_overruns(end)
                if -wait > self.period_us:
                    deadline = end  # far behind: start afresh rather than chase
            count += 1
            if count == max_cycles:
                break

    def _account(self, took):
        self.cycle_us = took
        if took > self.worst_us:
            self.worst_us = took

    def _report_overruns(self, now):
        """FAULT(overrun) at most once a second; detail = overruns since the last one."""
        code = C.FAULT_OVERRUN
        if self.fault_sent[code] and \
                self.hal.ticks_diff(now, self.last_fault_us[code]) < CONFIG_FAULT_US:
            return
        self._fault_every(now, code, 0, C.NO_JOINT,
                          (self.overruns - self._overruns_reported) & MASK30)
        self._overruns_reported = self.overruns

    def stop(self):
        """Torque off: the firmware is leaving (REPL, or an error)."""
        self._torque(False)
        self.mode = C.MODE_IDLE
