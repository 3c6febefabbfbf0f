"""Teleoperation from host inputs (VR headsets, gloves, a webcam, a recording): frames from
dexlink.inputs, retargeted by dexlink.retarget, sent to the hand in HOST mode.

    session = open_teleop(board, "glove", method="vector")   # input opened, board in HOST
    with session: ...                                          # runs at 100 Hz until stopped

`dexlink teleop` and `dexlink record --input` run it; the exoskeleton (`--input exo`) needs
none of it: the board drives the hand itself in TELEOP mode.
"""
from __future__ import annotations

from dexlink.teleop.session import TeleopOptions, TeleopSession, TeleopTaps


def open_teleop(board, spec, *, method: str = "vector", options: TeleopOptions | None = None,
                bind: str = "127.0.0.1", listen_port: int | None = None, loop: bool = False,
                taps: TeleopTaps | None = None, hand_input=None) -> TeleopSession:
    """A session for a connected board (dexlink.board.ConnectedBoard), not started: the
    input named by `spec` (or `hand_input`, already made), a retargeter for the board's hand."""
    from dexlink.errors import UserError
    from dexlink.inputs.spec import open_input
    from dexlink.retarget import make_retargeter

    if board.hand is None:
        raise UserError("retargeting needs the hand's model: name the hand with --hand")
    retargeter = make_retargeter(board.hand, method=method)
    n = board.link.board.n_joints
    if len(retargeter.joint_names) != n:
        raise UserError("%s has %d joints but the board runs %d: name the board's hand with --hand"
                        % (board.hand, len(retargeter.joint_names), n))
    if hand_input is None:
        hand_input = open_input(spec, bind=bind, port=listen_port, loop=loop)
    return TeleopSession(board.link, hand_input, retargeter, options, taps)


__all__ = ["TeleopOptions", "TeleopSession", "TeleopTaps", "open_teleop"]
