# Injected faults of the virtual board, read by the simulated devices on every access.
#
# The virtual-board supervisor sets these through its control channel (poll() below);
# tests running the drivers directly set them by hand. Fields are fixed objects mutated
# in place, so reading them in the loop allocates nothing.
import struct

MAX_JOINTS = 32

# Board clock error in parts per million (+ runs fast): skews vmachine.ticks_us().
clock_ppm = 0

# Per exoskeleton joint: the encoder reports no magnet (status registers say so).
magnet_missing = bytearray(MAX_JOINTS)

# Per motor: the servo does not answer / answers with a wrong checksum.
servo_silent = bytearray(MAX_JOINTS)
servo_bad_checksum = bytearray(MAX_JOINTS)

# The injection channel: fixed 8-byte records "<BBhi" (kind, index, flag, value) on a
# pipe the supervisor made non-blocking, so a poll with nothing waiting is one read()
# that returns None. Records are shorter than PIPE_BUF: they arrive whole.
RECORD = "<BBhi"
RECORD_SIZE = 8
KIND_CLEAR = 0
KIND_MAGNET_MISSING = 1
KIND_SERVO_SILENT = 2
KIND_SERVO_BAD_CHECKSUM = 3
KIND_CLOCK_PPM = 4
KIND_CLAIMED = 5  # not a fault: the supervisor took note of console claim number `value`
KIND_OPERATOR = 6  # not a fault: the operator's behaviour (index), finger (value; -1: all)
KIND_NAMES = ("clear", "magnet_missing", "servo_silent", "servo_bad_checksum", "clock_ppm",
              "claimed", "operator")

# What the simulated operator can be asked to do (voperator), and its finger names.
OPERATOR_BEHAVIOURS = ("demo", "zero", "sweep")
OPERATOR_FINGERS = ("thumb", "index", "middle", "ring", "little", "palm")
ALL_FINGERS = -1

_channel = None
_supervised = False  # attached to a supervisor's pipe (not a test's file)
_record = bytearray(RECORD_SIZE)
_tables = (None, magnet_missing, servo_silent, servo_bad_checksum)
injections = 0  # records applied since boot
claim_ack = 0  # the last console claim the supervisor acknowledged (vconsole.claim)
operator_behaviour = 0  # index in OPERATOR_BEHAVIOURS (the operator reads these three)
operator_finger = ALL_FINGERS  # index in OPERATOR_FINGERS, or ALL_FINGERS
operator_requests = 0  # requests applied since boot: the operator notices a new one


def clear():
    """Remove every injected fault."""
    global clock_ppm
    clock_ppm = 0
    for table in (magnet_missing, servo_silent, servo_bad_checksum):
        for i in range(MAX_JOINTS):
            table[i] = 0


def attach(fd):
    """Read injections from file descriptor fd (inherited from the supervisor)."""
    global _channel, _supervised
    _channel = open(fd, "rb")
    _supervised = True


def apply(kind, index, flag, value):
    """Apply one injection record (also usable by hand in tests)."""
    global clock_ppm, injections, claim_ack, operator_behaviour, operator_finger, operator_requests
    injections += 1
    if kind == KIND_CLEAR:
        clear()
    elif kind == KIND_CLOCK_PPM:
        clock_ppm = value
    elif kind == KIND_CLAIMED:
        claim_ack = value
    elif kind == KIND_OPERATOR:
        operator_behaviour = index
        operator_finger = value
        operator_requests += 1
    elif 0 < kind < len(_tables) and 0 <= index < MAX_JOINTS:
        _tables[kind][index] = 1 if flag else 0


def poll():
    """Apply injections waiting on the control channel; cheap and allocation-free when none."""
    ch = _channel
    if ch is None:
        return 0
    n = 0
    while True:
        got = ch.readinto(_record)  # None: nothing waits; 0: end of file
        if got != RECORD_SIZE:
            if got == 0 and _supervised:
                # The supervisor is gone (only it holds the pipe's other end): stop this
                # interpreter rather than run on, orphaned, at 1 kHz.
                raise SystemExit
            return n
        r = _record
        # Decoded by hand: struct.unpack would allocate a tuple per record.
        value = r[4] | (r[5] << 8) | (r[6] << 16) | (r[7] << 24)
        if value & 0x80000000:
            value -= 0x100000000
        apply(r[0], r[1], r[2] | r[3], value)
        n += 1


def encode(kind, index=0, flag=0, value=0):
    """One record, as the supervisor writes it (CPython and MicroPython)."""
    return struct.pack(RECORD, kind, index, flag, value)
