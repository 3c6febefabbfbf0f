"""FAULT messages in words, with the hand's joint and motor names."""
from __future__ import annotations

from dexproto import catalog
from dexproto.stream import Message

# FAULT.joint is a motor index for these codes (servo faults), an exoskeleton joint's otherwise.
MOTOR_FAULTS = frozenset((catalog.FAULT_SERVO_TIMEOUT, catalog.FAULT_SERVO_CHECKSUM,
                          catalog.FAULT_SERVO_ERROR))


def fault_where(m: Message, joints=(), motors=()) -> str:
    """What a FAULT is about, by name: "joint index_mcp (3)", "motor thumb_ip (5)" (the
    hand's names; the number alone when the name is not known), or "" for the board."""
    i = m.joint
    if i == catalog.NO_JOINT:
        return ""
    kind, names = ("motor", motors) if m.code in MOTOR_FAULTS else ("joint", joints)
    return "%s %s (%d)" % (kind, names[i], i) if i < len(names) else "%s %d" % (kind, i)


def fault_text(m: Message, joints=(), motors=()) -> str:
    """A FAULT in words: "FAULT magnet at joint index_mcp (3), detail 1"."""
    code = m.code
    name = catalog.FAULT_NAMES[code] if code < len(catalog.FAULT_NAMES) else "fault %d" % code
    where = fault_where(m, joints, motors)
    return "FAULT %s%s, detail %d" % (name, " at " + where if where else "", m.detail)
