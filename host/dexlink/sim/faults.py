"""Faults injected into the virtual board, and the simulated operator's requests.

Device faults, the clock error and the operator's behaviour reach the firmware as vfaults
records (the board module's own encoder: one format). They are physical, not part of the
interpreter: the injector keeps them and replays them into every fresh boot, until
cleared. Line noise is applied by the console (bridge.py) to a running program's data.
"""
from __future__ import annotations

from dexlink.sim.boardcode import vfaults
from dexlink.sim.line import LineNoise
from dexlink.sim.supervisor import Supervisor

DEVICE_FAULTS = {
    "magnet_missing": vfaults.KIND_MAGNET_MISSING,
    "servo_silent": vfaults.KIND_SERVO_SILENT,
    "servo_bad_checksum": vfaults.KIND_SERVO_BAD_CHECKSUM,
}
FAULTS = tuple(DEVICE_FAULTS) + ("clock", "line_noise", "reset", "soft_reset", "clear")
NOISE_DIRECTIONS = ("to_board", "to_host")
OPERATOR_BEHAVIOURS = vfaults.OPERATOR_BEHAVIOURS
OPERATOR_FINGERS = vfaults.OPERATOR_FINGERS


class FaultInjector:
    """VirtualBoard.inject() and .operator(): arguments checked on the caller's thread,
    state changed on the supervisor's (it replays the state at every boot)."""

    def __init__(self, supervisor: Supervisor, to_board: LineNoise, to_host: LineNoise):
        self._supervisor = supervisor
        self._noise = {"to_board": to_board, "to_host": to_host}
        self._devices: dict[tuple[int, int], int] = {}  # (kind, index) -> flag
        self._clock_ppm = 0
        self._operator: bytes | None = None  # the operator's last request (a record)
        supervisor.on_boot = self._replay

    def inject(self, fault: str, joint: int | None = None, on: bool = True, *, ppm: int = 0,
               drop_rate: float = 0.0, garbage_rate: float = 0.0, flip_rate: float = 0.0,
               insert_rate: float = 0.0, direction: str = "both") -> None:
        call = self._supervisor.call
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (faults: %s)" % (fault, ", ".join(FAULTS)))
        if fault in DEVICE_FAULTS:
            if joint is None or not 0 <= joint < vfaults.MAX_JOINTS:
                raise ValueError("%s needs joint=0..%d" % (fault, vfaults.MAX_JOINTS - 1))
            call(lambda: self._device(DEVICE_FAULTS[fault], joint, int(bool(on))))
        elif fault == "clock":
            call(lambda: self._clock(int(ppm)))
        elif fault == "line_noise":
            if direction not in NOISE_DIRECTIONS + ("both",):
                raise ValueError("line_noise direction must be to_board, to_host or both")
            for name in NOISE_DIRECTIONS:
                if direction in (name, "both"):
                    self._noise[name].set(drop_rate, garbage_rate, flip_rate, insert_rate)
        elif fault == "clear":
            for noise in self._noise.values():
                noise.set()
            call(self._clear)
        else:
            soft = fault == "soft_reset"
            call(lambda: self._supervisor.reset(soft))

    def operator(self, behaviour: str, finger: str | None = None) -> None:
        if behaviour not in OPERATOR_BEHAVIOURS:
            raise ValueError("unknown operator behaviour %r (behaviours: %s)"
                             % (behaviour, ", ".join(OPERATOR_BEHAVIOURS)))
        if finger is not None and finger not in OPERATOR_FINGERS:
            raise ValueError("unknown finger %r (fingers: %s)"
                             % (finger, ", ".join(OPERATOR_FINGERS)))
        which = vfaults.ALL_FINGERS if finger is None else OPERATOR_FINGERS.index(finger)
        record = vfaults.encode(vfaults.KIND_OPERATOR, OPERATOR_BEHAVIOURS.index(behaviour),
                                0, which)
        self._supervisor.call(lambda: self._set_operator(record))

    # -- on the supervisor thread -----------------------------------------------------
    def _device(self, kind: int, index: int, flag: int) -> None:
        self._devices[(kind, index)] = flag
        self._supervisor.send_fault(vfaults.encode(kind, index, flag, 0))

    def _clock(self, ppm: int) -> None:
        self._clock_ppm = ppm
        self._supervisor.send_fault(vfaults.encode(vfaults.KIND_CLOCK_PPM, 0, 0, ppm))

    def _clear(self) -> None:
        self._devices.clear()
        self._clock_ppm = 0
        self._supervisor.send_fault(vfaults.encode(vfaults.KIND_CLEAR))

    def _set_operator(self, record: bytes) -> None:
        self._operator = record  # a person, not part of the board: kept through resets
        self._supervisor.send_fault(record)

    def _replay(self, interp) -> None:
        """Physical faults outlive a reset: tell the fresh interpreter."""
        for (kind, index), flag in self._devices.items():
            interp.send_fault(vfaults.encode(kind, index, flag, 0))
        if self._clock_ppm:
            interp.send_fault(vfaults.encode(vfaults.KIND_CLOCK_PPM, 0, 0, self._clock_ppm))
        if self._operator:
            interp.send_fault(self._operator)
