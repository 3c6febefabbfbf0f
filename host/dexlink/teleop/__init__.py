"""Teleoperation from host inputs (VR headsets, gloves, a webcam, a recording): frames from
dexlink.inputs, retargeted by dexlink.retarget, sent to the hand in HOST mode.

    session = open_teleop(board, TeleopSetup("glove"))   # input and retargeter made
    board.link.set_mode(catalog.MODE_HOST)
    with session: ...                                     # 100 Hz goals until stopped
    session.stats()                                       # counters, latencies per stage

`dexlink teleop` and `dexlink record --input` run it (RecordOptions.teleop, whose episodes
then keep the input frames, the goals and the latencies: dexlink.teleop.recording). The
exoskeleton (`--input exo`) needs none of it: the board drives the hand itself (TELEOP mode).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dexlink.inputs.udp import LOOPBACK
from dexlink.teleop.session import TeleopOptions, TeleopSession, TeleopTaps


@dataclass(frozen=True)
class TeleopSetup:
    """A teleop session from a host input, all but the board."""

    input: str  # an --input value other than exo (dexlink.inputs.spec)
    method: str = "vector"  # retargeting optimiser: vector, position or dexpilot
    bind: str = LOOPBACK  # the input's listener address
    listen_port: int | None = None  # the input's own port (None: its default)
    loop: bool = False  # a file input starts again at its end
    session: TeleopOptions = field(default_factory=TeleopOptions)


def open_teleop(board, setup: TeleopSetup, *, taps: TeleopTaps | None = None,
                hand_input=None) -> TeleopSession:
    """A session for a connected board (dexlink.board.ConnectedBoard), not started: the
    setup's input (or `hand_input`, already made) and a retargeter for the board's hand."""
    from dexlink.errors import UserError
    from dexlink.inputs.spec import open_input
    from dexlink.retarget import make_retargeter

    if board.hand is None:
        raise UserError("retargeting needs the hand's model: name the hand with --hand")
    retargeter = make_retargeter(board.hand, method=setup.method)
    n = board.link.board.n_joints
    if len(retargeter.joint_names) != n:
        raise UserError("%s has %d joints but the board runs %d: name the board's hand with --hand"
                        % (board.hand, len(retargeter.joint_names), n))
    if hand_input is None:
        hand_input = open_input(setup.input, bind=setup.bind, port=setup.listen_port, loop=setup.loop)
    return TeleopSession(board.link, hand_input, retargeter, setup.session, taps)


__all__ = ["TeleopOptions", "TeleopSession", "TeleopSetup", "TeleopTaps", "open_teleop"]
