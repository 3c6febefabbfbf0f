# TELEMETRY packed and framed on the RP2040/RP2350's second core (issue 15).
#
# On rp2, MicroPython's _thread runs a new thread on core 1 with no GIL, truly in parallel
# with the loop on core 0 (sys.implementation._thread == "unsafe"; dexfw.app starts this
# only there, and only for a board whose description says second_core). On a telemetry
# cycle the loop (core 0) only copies what a TELEMETRY frame holds (the head values, and
# the per-joint arrays in one viper kernel) and hands it over; core 1 packs the body, CRCs
# and COBS-encodes it into a FrameWriter of its own; core 0 writes the finished frame to
# the console at the start of a later cycle (Firmware.cycle: flush). One place writes to
# the console, core 0: the USB console is not safe to share between cores, and frames must
# not interleave. FAULTs, replies and RAW_SAMPLE stay on core 0 as before.
#
# The wire does not change. The bytes are those replies.send_telemetry makes. Sequence
# numbers: core 1 frames with the number core 0's link will use next; if core 0 sent
# another frame in between (an ACK, a FAULT), core 0 frames the packed body again with the
# number then due (CRC and COBS only, no packing: .reframed counts it), so the host still
# receives the numbers in order. The write is counted in the link's tx_frames / tx_dropped
# as Link.send counts it. A telemetry cycle that finds core 1 still busy with the last
# frame skips its own (counted in .skipped) rather than wait: nothing is sent and no
# number used, so the host sees a TELEMETRY `cycle` missing, not a lost frame.
#
# The handshake: two _thread locks made once, used as binary semaphores (a _thread lock
# may be released by a thread other than the one that took it, in CPython and MicroPython).
# - `_todo` is held while core 1 has nothing to do: core 0 releases it to hand a snapshot
#   over; core 1 waits in a blocking acquire() (on rp2 it sleeps in WFE there, so an idle
#   core 1 fetches nothing from flash and leaves the XIP cache to core 0).
# - `done` is held while a frame is being made: core 1 releases it when the frame is
#   finished; core 0 takes it back with acquire(0), which never blocks.
# Memory order: everything core 0 writes into the snapshot comes before its
# _todo.release(), and core 1 reads it only after its acquire() returned; the frame core 1
# writes comes before its done.release(), and core 0 reads it only after its acquire(0)
# succeeded. A release and the acquire that follows it are a release/acquire pair: on rp2
# the pico-sdk mutex under a lock takes a hardware spin lock with memory barriers (DMB);
# on the Unix port a pthread mutex synchronises memory (POSIX). A plain state byte would
# lean on the cores keeping their stores in order (the M0+ and M33 do, but nothing in
# MicroPython promises it), and core 1 would have to poll it, running the interpreter
# from flash all the while. Ownership follows: from the hand-off until `done` is taken,
# the snapshot, the writer and the frame are core 1's; otherwise core 0's.
#
# Nothing here allocates once warmed up (a frame of each length made once: FrameWriter),
# and each step's frame stays on MicroPython's stack (tests/test_firmware_dualcore.py).
from array import array

from dexfw import mapping
from dexfw.replies import TELEMETRY_HEAD, TELEMETRY_HEAD_SIZE, pack_into
from dexproto import catalog as C
from dexproto.frame import FrameWriter

MASK30 = C.COUNTER_MASK


def snapshot_py(exo, goal, present, flags, sstatus, s16, s8, n, nm):
    """Copy what a TELEMETRY frame holds: s16 = exo | goal | present, s8 = flags |
    servo status (the viper twin is dexfw.telemetry_viper.snapshot)."""
    i = 0
    while i < n:
        s16[i] = exo[i]
        s16[n + i] = goal[i]
        s8[i] = flags[i]
        i += 1
    i = 0
    while i < nm:
        s16[2 * n + i] = present[i]
        s8[n + i] = sstatus[i]
        i += 1


snapshot = snapshot_py
VIPER = False
try:
    # In its own module: a port without the viper emitter refuses that module whole.
    from dexfw.telemetry_viper import snapshot as _snapshot_viper
    snapshot = _snapshot_viper
    VIPER = True
except (ImportError, SyntaxError):
    pass  # CPython (no micropython module), or a port without the viper emitter


def select(viper):
    """Use the viper snapshot (when the port has it) or the plain-Python one."""
    global snapshot
    use = viper and VIPER
    snapshot = _snapshot_viper if use else snapshot_py
    return use


class Core1Telemetry:
    """TELEMETRY made on core 1: hand_off(), flush() and write() run on core 0, _serve()
    (with _make) on core 1."""

    def __init__(self, fw):
        import _thread
        jm = fw.jm
        # fw, jm and link are core 0's side only: core 1 reads this object's snapshot, its
        # own arrays and writer, and the motors' tables below (read-only).
        self.fw = fw
        self.jm = jm
        self.link = fw.link
        n = self.n = jm.n
        nm = self.nm = jm.nm
        # The snapshot, in two buffers (one kernel call with few arguments keeps the
        # caller's frame on the stack), and core 1's views of its parts.
        self.s16 = array("h", [0] * (2 * n + nm))
        self.s8 = bytearray(n + nm)
        v16 = memoryview(self.s16)
        v8 = memoryview(self.s8)
        self.exo = v16[0:n]
        self.goal = v16[n:2 * n]
        self.present = v16[2 * n:2 * n + nm]
        self.flags = v8[0:n]
        self.sstatus = v8[n:n + nm]
        # Core 1's own results (core 0's jm.present_motor and report_status stay core 0's).
        self.present_motor = array("h", [mapping.UNKNOWN] * nm)
        self.report_status = bytearray(nm)
        # The motors' direction, offset and blind marks: set at boot, only read after.
        self.mdir = jm.mdir
        self.moff = jm.moff
        self.blind = jm.blind
        self.writer = FrameWriter()
        self.body = self.writer.body
        # mapping.pack_joints_of reads these, as it reads a JointMap's: one argument.
        self.pack_body = self.body
        self.pack_at = TELEMETRY_HEAD_SIZE
        self.cycles = self.sample_us = self.cycle_us = self.worst_us = 0
        self.overruns = self.mode = 0
        self.frame = None  # the finished frame (a view of the writer's buffer), or None
        self.end = 0  # its body's length
        self.made = 0  # frames core 1 made
        self.skipped = 0  # telemetry cycles that found core 1 busy: no frame sent
        self.reframed = 0  # frames core 0 framed again (another frame went out first)
        self.error = None  # what stopped a frame on core 1 (none sent for it)
        self.running = False
        self._todo = _thread.allocate_lock()
        self.done = _thread.allocate_lock()
        self._todo.acquire()
        self.done.acquire()
        self._start_thread = _thread.start_new_thread

    def start(self):
        """Run the worker on the second core (rp2: the new thread's core)."""
        self.running = True
        self._start_thread(self._serve, ())

    def stop(self):
        """Let the worker end (the firmware is leaving). A hand-off core 1 has not taken
        yet is taken back (acquire(0)), so the release below always finds _todo held."""
        if self.running:
            self.running = False
            self._todo.acquire(0)
            self._todo.release()

    # ---- core 0 ----------------------------------------------------------------------
    def hand_off(self):
        """A telemetry cycle: snapshot and hand over; skip it if core 1 is still busy."""
        fw = self.fw
        if fw.tele_out:
            if not self.done.acquire(0):
                self.skipped = (self.skipped + 1) & MASK30
                return
            self.write()
        self._snap()
        self.cycles = fw.cycles
        self.sample_us = fw.sample_us
        self.cycle_us = fw.cycle_us
        self.worst_us = fw.worst_us
        self.overruns = fw.overruns
        self.mode = fw.mode
        self.writer.seq = self.link.writer.seq  # the number due if nothing goes first
        fw.tele_out = 1
        self._todo.release()

    def _snap(self):
        # Only self: the call's 10 stack slots and one local fit MicroPython's on-stack frame.
        snapshot(self.jm.exo, self.jm.goal, self.jm.present, self.jm.flags,
                 self.jm.servo_status, self.s16, self.s8, self.n, self.nm)

    def flush(self):
        """Write the frame if core 1 has finished it (Firmware.cycle makes the same test
        itself, a call fewer)."""
        if self.done.acquire(0):
            self.write()

    def write(self):
        """Core 0, `done` taken (core 1 finished): write the frame as Link.send would."""
        link = self.link
        w = self.writer
        self.fw.tele_out = 0
        frame = self.frame
        if frame is None:
            return  # core 1 failed it (.error): nothing sent, no number used
        if w.seq != (link.writer.seq + 1) & 0xFFFF:
            frame = self._reframe()
        n = link.console.write(frame)
        if n is not None and n < len(frame):
            link.tx_dropped = (link.tx_dropped + 1) & MASK30
        else:
            link.tx_frames = (link.tx_frames + 1) & MASK30
        link.writer.seq = w.seq

    def _reframe(self):
        """Another frame took the number core 1 framed with: frame the body again."""
        w = self.writer
        w.seq = self.link.writer.seq
        self.reframed = (self.reframed + 1) & MASK30
        return w.finish(C.TELEMETRY, self.end)

    # ---- core 1 ----------------------------------------------------------------------
    def _serve(self):
        """The worker: a frame for each hand-off, until stop()."""
        while True:
            self._todo.acquire()
            if not self.running:
                return
            try:
                self._make()
            except Exception as e:  # kept to be read; an error on core 1 stops no loop
                self.frame = None
                self.error = e
            self.done.release()

    def _make(self):
        _pack_head(self)
        _present(self)
        end = self.end = mapping.pack_joints_of(self)
        self.frame = self.writer.finish(C.TELEMETRY, end)
        self.made = (self.made + 1) & MASK30


# One-argument module functions (as dexfw.replies): each call's frame stays on the stack.
def _pack_head(t):
    pack_into(TELEMETRY_HEAD, t.body, 0, t.cycles, t.sample_us, min(t.cycle_us, 0xFFFF),
              min(t.worst_us, 0xFFFF), t.overruns & 0xFFFF, t.mode)


def _present(t):
    """The present positions in the motor frame, and the unread marks (as JointMap's
    read_present and mark_unread, into core 1's own arrays)."""
    mapping.from_servo(t.present, t.mdir, t.moff, t.present_motor, t.nm)
    mapping.mark_unread(t.sstatus, t.present_motor, t.blind, t.report_status,
                        C.ST_SERVO_TIMEOUT, t.nm)
