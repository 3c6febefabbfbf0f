# ruff: noqa: F821 - viper's pointer types (ptr8, ptr16) are names only its compiler knows
# dexfw.telemetry's snapshot copy as viper code (MicroPython only).
#
# Kept in a module of its own (docs/decisions.md): a port built without the viper emitter
# refuses the whole module at compile time, so telemetry catches the failed import and
# keeps snapshot_py, the reference this must match (tests/test_firmware_dualcore.py
# compares them). A plain copy: int16 items are copied as 16-bit words, no sign needed.
import micropython


@micropython.viper
def snapshot(exo: ptr16, goal: ptr16, present: ptr16, flags: ptr8, sstatus: ptr8,
             s16: ptr16, s8: ptr8, n: int, nm: int):
    """telemetry.snapshot_py in viper."""
    for i in range(n):
        s16[i] = exo[i]
        s16[n + i] = goal[i]
        s8[i] = flags[i]
    for m in range(nm):
        s16[2 * n + m] = present[m]
        s8[n + m] = sstatus[m]
