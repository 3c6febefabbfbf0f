# dexfw.trajectory's per-joint blend as viper code (MicroPython only).
#
# Kept in a module of its own (docs/decisions.md): a port built without the viper emitter
# refuses the whole module at compile time, so trajectory catches the failed import and
# keeps blend_py, the reference this must match (tests/test_trajectory.py compares them).
# ptr16 loads are unsigned: signs are restored by hand (>= 32768: - 65536).
import micropython


@micropython.viper
def blend(q: ptr16, k: ptr16, out: ptr16):
    """trajectory.blend_py in viper."""
    a = int(k[0])
    b = int(k[1])
    c = int(k[2])
    d = int(k[3])
    w01 = int(k[4])
    w10 = int(k[5])
    w11 = int(k[6])
    if w11 >= 32768:
        w11 -= 65536
    ra = int(k[7])
    rb = int(k[8])
    n = int(k[9])
    for j in range(n):
        pa = int(q[a + j])
        if pa >= 32768:
            pa -= 65536
        pb = int(q[b + j])
        if pb >= 32768:
            pb -= 65536
        pc = int(q[c + j])
        if pc >= 32768:
            pc -= 65536
        pd = int(q[d + j])
        if pd >= 32768:
            pd -= 65536
        x = w01 * (pc - pb) + w10 * (((pc - pa) * ra) >> 12) + w11 * (((pd - pb) * rb) >> 12)
        x = pb + ((x + 2048) >> 12)
        if x < -32767:
            x = -32767
        elif x > 32767:
            x = 32767
        out[j] = x
