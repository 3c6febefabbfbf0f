# The host's configuration commands (SET_CONFIG, GET_JOINT, SET_JOINT): off the loop's
# per-cycle path, beside it so dexfw.loop's Firmware keeps to the cycle, modes and safety.
# Each takes the Firmware and the command's sequence number, and answers it.
from dexfw import config, replies
from dexfw.applyonce import SLOT_CONFIG, SLOT_JOINT
from dexfw.link import head_format
from dexproto import catalog as C
from dexproto.frame import HEADER_SIZE as BODY  # a received body starts here

SET_CONFIG_FORMAT = head_format(C.SET_CONFIG)
SET_JOINT_FORMAT = head_format(C.SET_JOINT)


def set_config(fw, seq):
    """The loop's rate, telemetry decimation and watchdog (applied once if retried)."""
    values = fw.link.unpack(SET_CONFIG_FORMAT)
    bad = config.bad_loop_field(values)
    if bad >= 0:
        fw.link.nack(C.SET_CONFIG, seq, C.ERR_BAD_VALUE, bad)
        return
    if not fw.once.repeated(SLOT_CONFIG, seq):
        fw._set_loop(values)
        fw.once.remember(SLOT_CONFIG, seq)
    fw.link.ack(C.SET_CONFIG, seq)


def get_joint(fw, seq):
    """JOINT: one joint's settings."""
    i = fw.link.payload[BODY]
    if i >= fw.jm.n:
        fw.link.nack(C.GET_JOINT, seq, C.ERR_BAD_VALUE, 0)
        return
    replies.send_joint(fw, i)


def set_joint(fw, seq):
    """One joint's range, speed limit and calibration (applied once if retried)."""
    values = fw.link.unpack(SET_JOINT_FORMAT)
    bad = config.bad_joint_field(values, fw.jm.n)
    if bad >= 0:
        fw.link.nack(C.SET_JOINT, seq, C.ERR_BAD_VALUE, bad)
        return
    slot = SLOT_JOINT + values[0]
    if not fw.once.repeated(slot, seq):
        fw.jm.set_joint(*values)
        fw.jm.limit_goals()
        fw.once.remember(slot, seq)
    fw.link.ack(C.SET_JOINT, seq)
