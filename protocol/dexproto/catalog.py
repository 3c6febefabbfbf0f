# The dexlink message catalog: the single definition of every message on the wire.
#
# Written in the subset of Python that CPython 3.11 and MicroPython 1.2x both run
# (no dataclasses, no enum, no f-strings with "=" ...): the firmware imports this very
# file, and so does the host. Nothing here allocates after import.
#
# A payload is   HEADER || head || (items * n  |  tail bytes)
#   HEADER  = struct "<BH": message type, sequence number (per sender, wraps at 65536)
#   head    = a fixed struct, may be empty
#   items   = a repeated struct (one per joint; TARGET_POINTS: one per joint of each point,
#             point after point); n is implied by the length, which must divide exactly
#   tail    = free bytes (UTF-8 text) filling the rest of the payload
# A message has items or a tail or neither, never both.
#
# Angles travel as signed 16-bit integers in centidegrees (cdeg, 0.01 degree):
# +-327.67 degrees, finer than any encoder on the rig (AS5048A: 0.022 degree).
# Raw encoder positions travel as unsigned 16-bit fractions of a turn (65536 = 360 deg).

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 2  # 1.2: TARGET_POINTS

HEADER_FORMAT = "<BH"
HEADER_SIZE = 3
CRC_SIZE = 4
# Largest payload (header and body, without CRC). 32 joints of TELEMETRY fit easily.
MAX_PAYLOAD = 508
# Largest frame on the wire: COBS adds one byte per 254 and the 0x00 delimiter.
MAX_FRAME = MAX_PAYLOAD + CRC_SIZE + (MAX_PAYLOAD + CRC_SIZE) // 254 + 2

# Counters the board keeps since boot (STATS, TELEMETRY.cycle) wrap at 2^30: they stay
# small ints on 32-bit ports, so counting never allocates.
COUNTER_MASK = 0x3FFFFFFF

# Directions
TO_BOARD = 1
TO_HOST = 2

# Modes (SET_MODE.mode, TELEMETRY.mode)
MODE_IDLE = 0
MODE_TELEOP = 1
MODE_HOST = 2
MODE_CALIBRATE = 3
MODE_NAMES = ("IDLE", "TELEOP", "HOST", "CALIBRATE")

# Watchdog actions (CONFIG.watchdog_action)
WATCHDOG_HOLD = 0
WATCHDOG_TORQUE_OFF = 1

# Per-joint status bits (TELEMETRY item "status", RAW_SAMPLE item "status")
ST_MAGNET_MISSING = 0x01  # encoder reports no magnet (AS5600 MD clear, AS5048A error)
ST_MAGNET_WEAK = 0x02  # magnet too weak / too strong: angle is suspect
ST_ENCODER_ERROR = 0x04  # bus error, parity error, or no answer from the encoder
ST_HELD = 0x08  # the goal is held at its last good value
ST_SERVO_TIMEOUT = 0x10  # the servo did not answer its last read (or has not answered yet)
ST_SERVO_BAD_CHECKSUM = 0x20  # the servo's last answer failed its checksum
ST_SERVO_ERROR = 0x40  # the servo reported an error (overload, overheat, voltage...)
ST_LIMITED = 0x80  # the goal was clipped by a range or speed limit

# TELEMETRY present_cdeg of a servo whose position has not been read back since boot (with
# ST_SERVO_TIMEOUT set), or that cannot report it (no read-back: PWM servos). Not an angle:
# a dataset filters such samples out (dexlink export does).
PRESENT_UNKNOWN = -32768

# Capability bits (HELLO_REPLY.capabilities)
CAP_VIPER = 0x0001  # the byte loops run as viper code
CAP_SERVO_READBACK = 0x0002  # servo present positions are read back
CAP_COUPLING = 0x0004  # joint-to-motor coupling (tendon-driven hand)
CAP_VIRTUAL = 0x0008  # this is a virtual board

# NACK error codes
ERR_UNKNOWN_TYPE = 1  # the board does not handle this message type
ERR_BAD_LENGTH = 2  # the body length does not fit the message
ERR_BAD_VALUE = 3  # a field is out of range; NACK.field names it
ERR_BAD_MODE = 4  # not allowed in the current mode
ERR_VERSION = 5  # protocol major version mismatch
ERR_BUSY = 6  # try again later
ERR_NAMES = ("OK", "unknown type", "bad length", "bad value", "bad mode", "version mismatch", "busy")

# TARGET_POINTS.flags, and the points a board queues (a chunk and its overlap fit)
POINTS_REPLACE = 0x01  # queued points from t0_us on are dropped first; clear: append
POINTS_CAPACITY = 32
POINTS_MAX_STEP_US = 1000000  # points at least 1 Hz apart
POINTS_MAX_AHEAD_US = 1000000  # a chunk further ahead is a clock gone wrong

# FAULT codes
FAULT_WATCHDOG = 1  # host silent past the watchdog timeout in HOST mode
FAULT_MAGNET = 2  # an encoder lost its magnet; the joint is held
FAULT_ENCODER = 3  # an encoder stopped answering
FAULT_SERVO_TIMEOUT = 4  # a servo stopped answering
FAULT_SERVO_CHECKSUM = 5  # a servo answered with a bad checksum
FAULT_SERVO_ERROR = 6  # a servo reported an error bit
FAULT_ESTOP = 7  # emergency stop: torque off
FAULT_CONFIG = 8  # the boot config was refused; the board idles
FAULT_OVERRUN = 9  # the loop overran its period
FAULT_NAMES = ("none", "watchdog", "magnet", "encoder", "servo timeout", "servo checksum",
               "servo error", "e-stop", "config", "overrun")
NO_JOINT = 255

# LOG levels
LOG_DEBUG = 0
LOG_INFO = 1
LOG_WARNING = 2
LOG_ERROR = 3

# Message types
HELLO = 0x01
HELLO_REPLY = 0x02
SET_MODE = 0x03
SET_CONFIG = 0x04
GET_CONFIG = 0x05
CONFIG = 0x06
SET_JOINT = 0x07
GET_JOINT = 0x08
JOINT_CONFIG = 0x09
TARGETS = 0x0A
TIME_SYNC = 0x0B
TIME_SYNC_REPLY = 0x0C
HEARTBEAT = 0x0D
ESTOP = 0x0E
GET_STATS = 0x0F
STATS = 0x10
REPL = 0x11
ACK = 0x12
NACK = 0x13
TARGET_POINTS = 0x14
TELEMETRY = 0x20
RAW_SAMPLE = 0x21
FAULT = 0x22
LOG = 0x23

# The catalog. One row per message:
#   (type, name, direction, head format, head fields, item format, item fields, tail field, summary)
# Formats are struct formats, always little-endian "<". Field names end in their unit
# where they have one (_cdeg, _us, _ms, _hz, _turn16); UNITS below spells them out.
MESSAGES = (
    (HELLO, "HELLO", TO_BOARD, "<BB", ("proto_major", "proto_minor"), None, (), None,
     "Opens a session; the board answers HELLO_REPLY, or NACK(version mismatch)."),
    (HELLO_REPLY, "HELLO_REPLY", TO_HOST, "<BBBBBBHHHI",
     ("proto_major", "proto_minor", "fw_major", "fw_minor", "fw_patch", "n_joints",
      "loop_hz", "capabilities", "telemetry_decimation", "config_crc"),
     None, (), "board",
     "Who the board is: versions, joint count, loop rate, capability bits, CRC-32 of its config."),
    (SET_MODE, "SET_MODE", TO_BOARD, "<B", ("mode",), None, (), None,
     "Switch mode (IDLE, TELEOP, HOST, CALIBRATE); goals slew from where the hand is."),
    (SET_CONFIG, "SET_CONFIG", TO_BOARD, "<HHHB", ("loop_hz", "telemetry_decimation",
     "watchdog_ms", "watchdog_action"), None, (), None,
     "Set loop rate, telemetry decimation, watchdog timeout and action."),
    (GET_CONFIG, "GET_CONFIG", TO_BOARD, "", (), None, (), None,
     "Ask for the loop configuration; answered by CONFIG."),
    (CONFIG, "CONFIG", TO_HOST, "<HHHB", ("loop_hz", "telemetry_decimation", "watchdog_ms",
     "watchdog_action"), None, (), None,
     "The loop configuration in force."),
    (SET_JOINT, "SET_JOINT", TO_BOARD, "<BHbhhhH",
     ("joint", "zero_turn16", "direction", "scale_q12", "min_cdeg", "max_cdeg",
      "max_speed_cdeg_per_ms"), None, (), None,
     "Set one joint's calibration and limits."),
    (GET_JOINT, "GET_JOINT", TO_BOARD, "<B", ("joint",), None, (), None,
     "Ask for one joint's calibration; answered by JOINT_CONFIG."),
    (JOINT_CONFIG, "JOINT_CONFIG", TO_HOST, "<BHbhhhH",
     ("joint", "zero_turn16", "direction", "scale_q12", "min_cdeg", "max_cdeg",
      "max_speed_cdeg_per_ms"), None, (), None,
     "One joint's calibration and limits in force."),
    (TARGETS, "TARGETS", TO_BOARD, "", (), "<h", ("target_cdeg",), None,
     "Joint targets for HOST mode, one per joint; also feeds the watchdog."),
    (TIME_SYNC, "TIME_SYNC", TO_BOARD, "<I", ("token",), None, (), None,
     "Clock probe; the board answers TIME_SYNC_REPLY at once."),
    (TIME_SYNC_REPLY, "TIME_SYNC_REPLY", TO_HOST, "<III", ("token", "rx_us", "tx_us"),
     None, (), None,
     "Board clock (ticks_us, wraps at 2^30 on boards, 2^32 on the wire) when the probe "
     "arrived and when the reply left."),
    (HEARTBEAT, "HEARTBEAT", TO_BOARD, "", (), None, (), None,
     "Keeps the HOST-mode watchdog fed when no TARGETS flow."),
    (ESTOP, "ESTOP", TO_BOARD, "", (), None, (), None,
     "Emergency stop: torque off at once, mode IDLE."),
    (GET_STATS, "GET_STATS", TO_BOARD, "", (), None, (), None,
     "Ask for counters; answered by STATS."),
    (STATS, "STATS", TO_HOST, "<IIIIIIIIIIIIIHIIII",
     ("rx_frames", "rx_bad_cobs", "rx_bad_crc", "rx_oversize", "rx_unknown", "rx_bad_length",
      "rx_no_terminator", "tx_frames", "tx_dropped", "cycles", "overruns", "servo_timeouts",
      "servo_bad_checksums", "worst_cycle_us", "cmd_applied", "cmd_repeats", "heap_alloc",
      "heap_free"), None, (), None,
     "Link and loop counters since boot, wrapping at 2^30; rx_* are the board FrameReader's "
     "frames and drops; heap_* the interpreter's heap now (bytes)."),
    (REPL, "REPL", TO_BOARD, "", (), None, (), None,
     "Stop the firmware and hand the port back to the MicroPython REPL (for flashing)."),
    (ACK, "ACK", TO_HOST, "<BH", ("acked_type", "acked_seq"), None, (), None,
     "The command with this type and sequence number was applied."),
    (NACK, "NACK", TO_HOST, "<BHBB", ("acked_type", "acked_seq", "error", "field"), None, (),
     None,
     "The command was refused; error code, and the index of the offending field (255: none)."),
    (TARGET_POINTS, "TARGET_POINTS", TO_BOARD, "<IIB", ("t0_us", "step_us", "flags"), "<h",
     ("goal_cdeg",), None,
     "HOST mode, since 1.2: timed joint goals, n_joints per point, the first at board time "
     "t0_us, then one every step_us; the board interpolates them at its loop rate."),
    (TELEMETRY, "TELEMETRY", TO_HOST, "<IIHHHB",
     ("cycle", "board_us", "cycle_us", "worst_cycle_us", "overruns", "mode"),
     "<hhhB", ("exo_cdeg", "goal_cdeg", "present_cdeg", "status"), None,
     "One loop cycle: board time at sampling, loop timing, and per joint the exoskeleton "
     "angle, servo goal, servo present position and status bits."),
    (RAW_SAMPLE, "RAW_SAMPLE", TO_HOST, "<II", ("cycle", "board_us"), "<HB",
     ("raw_turn16", "status"), None,
     "CALIBRATE mode: raw encoder positions before calibration."),
    (FAULT, "FAULT", TO_HOST, "<IBBH", ("board_us", "code", "joint", "detail"), None, (), None,
     "Something went wrong on the board; joint 255 means none in particular."),
    (LOG, "LOG", TO_HOST, "<B", ("level",), None, (), "text",
     "A line of text from the board."),
)

UNITS = {
    "cdeg": "0.01 degree",
    "us": "microseconds, board clock",
    "ms": "milliseconds",
    "hz": "hertz",
    "turn16": "1/65536 turn",
    "q12": "fixed point, 4096 = 1.0",
    "cdeg_per_ms": "0.01 degree per millisecond",
}

DIRECTION_NAMES = {TO_BOARD: "host->board", TO_HOST: "board->host"}

# Lookup by type id: a 256-entry tuple so the board indexes it without hashing.
_by_type = [None] * 256
for _row in MESSAGES:
    _by_type[_row[0]] = _row
BY_TYPE = tuple(_by_type)
del _by_type, _row

BY_NAME = {}
for _row in MESSAGES:
    BY_NAME[_row[1]] = _row
del _row


def unit_of(field):
    """The unit of a field, from the suffix of its name ('' when it has none).

    The longest suffix wins: max_speed_cdeg_per_ms is in cdeg_per_ms, not ms.
    """
    best = ""
    for suffix in UNITS:
        if field.endswith("_" + suffix) and len(suffix) > len(best):
            best = suffix
    return UNITS[best] if best else ""
