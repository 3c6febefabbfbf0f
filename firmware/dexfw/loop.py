# The fixed-rate loop: sample encoders -> map -> slew-rate limit -> drive servos ->
# telemetry, with the host's commands read between cycles without blocking.
#
# The loop's other jobs live beside it: dexfw.faults (edge-triggered, rate-limited
# FAULTs), dexfw.applyonce (a retried command is not applied twice), dexfw.replies (the
# replies and telemetry, packed in place), dexfw.settings (the configuration commands),
# dexfw.sessioncmds (SET_MODE, HELLO), dexfw.devices (the encoders and servo buses as one
# of each), dexfw.joints + dexfw.mapping (the per-joint arithmetic).
#
# Nothing in cycle() allocates once warmed up (tests/test_firmware_alloc.py holds it to
# zero bytes per cycle under the MicroPython interpreter): arrays made in __init__,
# replies packed in place, no floats, no slices, no varargs.
from dexfw import config, devices, mapping, replies, sessioncmds, settings
from dexfw.applyonce import SLOT_TARGETS, ApplyOnce
from dexfw.faults import SLOW_FAULT_US, FaultReporter
from dexfw.joints import JointMap
from dexfw.link import Link
from dexfw.trajectory import Trajectory
from dexproto import catalog as C
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here

MASK30 = C.COUNTER_MASK  # counters stay small ints on 32-bit ports
DEFAULT_LOOP = (1000, 10, 250, C.WATCHDOG_HOLD)
# The servo read-back polls at most this often: at 1 kHz every other cycle. A poll and its
# answer are about a quarter of an RP2040's cycle (issue 15); each servo is then read
# every 2 ms x servos / read_group (32 ms for 16 servos), telemetry goes out every 10 ms.
READBACK_HZ = 500


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
        self.sample_us = hal.ticks_us()  # when the last cycle began
        self.watchdog_tripped = False
        self.last_rx_us = hal.ticks_us()
        self._waiting = self.link.waiting
        # Telemetry packs the joints straight into the link's body, after its head.
        self.jm.pack_body = self.link.body
        self.jm.pack_at = replies.TELEMETRY_HEAD_SIZE
        self.faults = FaultReporter(self.link, hal.ticks_diff, self.jm)
        self.once = ApplyOnce(self.link.reader, config.MAX_JOINTS)
        for bus in self.servos:
            if not getattr(bus, "READBACK", True):  # PWM servos: their motors report nothing
                for m in bus.joints:
                    self.jm.blind[m] = 1
        self.capabilities = capabilities(hal, self.servos, self.jm)
        self.points = Trajectory(self.jm, hal.ticks_diff, hal.ticks_add)  # TARGET_POINTS
        self.core1 = None  # TELEMETRY made on the second core (start_core1), or None
        self.tele_out = 0  # 1: core 1 has a frame of ours to finish or core 0 to write
        self._reader = self.link.reader  # its fill: a frame half read (one load fewer)
        # What the cycle calls: the one encoder driver and servo bus, or a chain of them
        # (dexfw.devices).
        self._encoder = devices.one(self.encoders)
        self._bus = devices.one(self.servos)
        if config_error is not None:
            # A configured board never has one: only an unconfigured board's cycle tests
            # for it (an instance attribute in cycle's place, as start_core1 does).
            self.cycle = self._cycle_unconfigured

    def _set_loop(self, values):
        self.hz, self.decimation, self.watchdog_ms, self.watchdog_action = values
        self.period_us = 1000000 // self.hz
        self._poll_every = max(1, self.hz // READBACK_HZ)  # cycles from a poll to the next
        self.watchdog_us = self.watchdog_ms * 1000
        self.jm.set_rate(self.hz)

    # ---- one cycle -------------------------------------------------------------------
    # Every call costs on a microcontroller (issue 15, emulated RP2040: a method call
    # 13.6 us, a function call 10.3 us, a bytecode ~1 us): the cycle calls the mapping
    # kernels directly, not through JointMap's one-line methods; the sense, drive and poll
    # steps are written out in it, each device call straight to the one encoder driver or
    # servo bus (dexfw.devices); the encoder check goes into FaultReporter only when a
    # status bit changed (one first_change pass, as it would do itself), and the console
    # is read only when bytes wait (Link.waiting).
    # Its frame stays on the stack (MicroPython puts one past 11 slots, locals and stack,
    # on the heap: an allocation per call, tests/test_vrig_frames.py): 5 locals and a
    # stack of 4. No for loop here (its iterator takes 4 slots), no call with more
    # arguments, no more locals.
    def cycle(self, now):
        """One loop cycle at board time now (when sampling starts)."""
        self.sample_us = now
        # Core 1's TELEMETRY, once it is finished (one lock call a cycle while one is
        # out): first, so that it goes before this cycle's replies.
        if self.tele_out and self._core1_done(0):
            self.core1.write()
        if self._waiting() or self._reader.fill:
            self._commands()
        jm = self.jm
        # Sense: encoders -> joint angles. One viper call maps the joints and finds an
        # encoder edge (1 + the first edge, or 0: FAULT on an encoder that went bad), and
        # in TELEOP sets the targets as follow did (jm.follow_exo, set_mode).
        self._encoder.sample(jm.raw, jm.enc_status)
        if mapping.map_exo_of(jm, self.faults.prev_bad):
            self.faults.check_encoders(now)
        mode = self.mode
        if mode == C.MODE_HOST:
            self._watchdog(now)
        if self.torque_on:  # drive: slew, coupling, limits and servo frame in one call
            mapping.drive_slewed(jm)
            self._bus.write_goals(jm.servo_goal)
        # The cycle count is the phase of the read-back polls and of telemetry (one
        # counter for three). Where it wraps (every 2**30 cycles) one interval is shorter.
        c = (self.cycles + 1) & MASK30
        self.cycles = c
        if not c % self._poll_every:  # read-back polls, FAULT on a servo that went bad
            self._bus.poll(jm.present, jm.servo_status)
            self.faults.check_servos(now)
        if not c % self.decimation:  # every `decimation` cycles: TELEMETRY, or RAW_SAMPLE
            if mode == C.MODE_CALIBRATE:
                replies.send_raw(self)
            else:
                self._send_telemetry()

    def _cycle_unconfigured(self, now):
        """cycle() of a board without a config (__init__ puts it in cycle's place)."""
        Firmware.cycle(self, now)
        self.faults.every(now, C.FAULT_CONFIG, SLOW_FAULT_US)

    def _send_telemetry(self):  # start_core1 puts core 1's hand-off in its place
        replies.send_telemetry(self)

    def start_core1(self):
        """Make TELEMETRY on the second core from now on (dexfw.telemetry; dexfw.app
        calls this on a board with second_core, on a port without a GIL)."""
        from dexfw.telemetry import Core1Telemetry
        self.core1 = Core1Telemetry(self)
        self._core1_done = self.core1.done.acquire
        self._send_telemetry = self.core1.hand_off
        self.core1.start()

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
            self.points.clear()
            return
        if self.points.count:
            self.points.sample(now)
        jm.follow_host()

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
            self.points.clear()
        else:
            self._torque(False)
        self.mode = mode
        self.jm.follow_exo = 1 if mode == C.MODE_TELEOP else 0  # the sense step follows
        return True

    def _torque(self, on):
        for bus in self.servos:
            bus.torque(on)
        self.torque_on = on

    def estop(self):
        """Torque off at once and IDLE."""
        self._torque(False)
        self.mode = C.MODE_IDLE
        self.jm.follow_exo = 0  # IDLE: the sense step leaves the targets alone
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

    def _handle(self, t, seq):
        link = self.link
        if t == C.TARGETS:
            self._targets(seq)
        elif t == C.TARGET_POINTS:
            self._target_points(seq)
        elif t == C.HEARTBEAT:
            link.ack(t, seq)
        elif t == C.TIME_SYNC:
            link.time_sync_reply()
        elif t == C.ESTOP:
            self.estop()
            link.ack(t, seq)
        elif t == C.SET_MODE:
            sessioncmds.set_mode(self, seq)
        elif t == C.HELLO:
            sessioncmds.hello(self, seq)
        elif t == C.GET_STATS:
            replies.send_stats(self)
        elif t == C.GET_CONFIG:
            replies.send_config(self)
        elif t == C.SET_CONFIG:
            settings.set_config(self, seq)
        elif t == C.GET_JOINT:
            settings.get_joint(self, seq)
        elif t == C.SET_JOINT:
            settings.set_joint(self, seq)
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
        elif self.once.repeated(SLOT_TARGETS, seq, True):
            link.ack(C.TARGETS, seq)
        else:
            self.jm.set_host_targets(link.payload, BODY, n)
            self.points.clear()
            self.watchdog_tripped = False
            self.once.remember(SLOT_TARGETS, seq, False)
            link.ack(C.TARGETS, seq)

    def _target_points(self, seq):
        link = self.link
        err = self.points.check(link.payload, link.reader.body_len, self.sample_us)
        if err:
            link.nack(C.TARGET_POINTS, seq, err >> 8, err & 0xFF)
        elif self.mode != C.MODE_HOST:
            link.nack(C.TARGET_POINTS, seq, C.ERR_BAD_MODE)
        else:
            self.points.insert(link.payload, self.sample_us)
            self.watchdog_tripped = False
            link.ack(C.TARGET_POINTS, seq)

    # ---- timing ----------------------------------------------------------------------
    def run(self, max_cycles=0):
        """Cycles on hal.ticks_us deadlines until REPL (or max_cycles, when given)."""
        hal = self.hal
        ticks_us = hal.ticks_us
        ticks_diff = hal.ticks_diff
        ticks_add = hal.ticks_add
        sleep_us = hal.sleep_us
        jm = self.jm
        start = deadline = ticks_us()
        # The slew limit follows the time since the last cycle began, not the configured
        # period: a board that cannot hold its rate still moves the hand at max speed
        # (slew_q8: clamped to 1..4 periods, see slew_q8).
        jm.slew_q8 = slew_q8(ticks_diff(start, self.sample_us), self.period_us)
        while self.running:
            self.cycle(start)
            end = ticks_us()
            took = ticks_diff(end, start)
            self.cycle_us = took
            if took > self.worst_us:
                self.worst_us = took
            deadline = ticks_add(deadline, self.period_us)
            wait = ticks_diff(deadline, end)
            if wait > 0:
                sleep_us(wait)
                start = ticks_us()
                # A cycle never begins before its deadline, so one that waited for it
                # begins at most a period after the last one began (and its sleep's
                # lateness, microseconds): one period, no time taken to know it.
                jm.slew_q8 = 256
            else:
                if wait:  # late
                    self.overruns = (self.overruns + 1) & MASK30
                    self.faults.overrun(end, self.overruns)
                    if -wait > self.period_us:
                        deadline = end  # far behind: start afresh rather than chase
                now = ticks_us()  # at once: the loop catches up on its deadlines
                jm.slew_q8 = slew_q8(ticks_diff(now, start), self.period_us)
                start = now
            if max_cycles:  # counted only when asked (the tests' runs)
                max_cycles -= 1
                if not max_cycles:
                    break

    def stop(self):
        """Torque off: the firmware is leaving (REPL, or an error)."""
        self._torque(False)
        self.mode = C.MODE_IDLE
        self.jm.follow_exo = 0
        if self.core1 is not None:
            self.core1.stop()


def slew_q8(dt, period):
    """The slew limit's time, dt us since the last cycle began, in 1/256 periods, clamped
    to 1..4 periods: an early cycle never slows the hand (the loop catches up on its
    deadlines), a stall never makes it jump."""
    return 256 if dt <= period else 1024 if dt >= period << 2 else (dt << 8) // period


def capabilities(hal, servos, jm):
    """HELLO_REPLY's capability bits for this board, its servo buses and joint map."""
    readback = False
    for bus in servos:
        if getattr(bus, "READBACK", True):
            readback = True
    viper = mapping.map_exo_of is not mapping.map_exo_of_py  # the loop's sense kernel
    return ((C.CAP_VIPER if viper else 0)
            | (C.CAP_SERVO_READBACK if readback else 0)
            | (C.CAP_COUPLING if jm.coupled else 0)
            | (C.CAP_VIRTUAL if getattr(hal, "VIRTUAL", False) else 0))
