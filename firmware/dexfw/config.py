# The board's check of /dexlink.json (shape in docs/interfaces.md). The host runs this same
# file before it ships a config (dexlink.hwconfig.validate_config), so both sides refuse
# the same faults. Runs at boot only: it may allocate.
#
# Errors are ValueError("field: problem"), e.g. "joints[3].min_cdeg: must be below max_cdeg".

FORMAT = 1
MAX_JOINTS = 32
INT16 = 32767
BUS_FIELDS = {
    "i2c": ("id", "scl", "sda", "freq"),
    "spi": ("id", "sck", "mosi", "miso", "baudrate"),
    "uart": ("id", "tx", "rx", "baudrate"),
}
# Fields of SET_CONFIG / CONFIG and SET_JOINT / JOINT_CONFIG, in wire order, with their
# allowed ranges. The index of a field here is the NACK "field" for a value out of range.
LOOP_LIMITS = (("hz", 10, 5000), ("telemetry_decimation", 1, 10000),
               ("watchdog_ms", 10, 60000), ("watchdog_action", 0, 1))
JOINT_LIMITS = (("joint", 0, MAX_JOINTS - 1), ("zero_turn16", 0, 65535), ("direction", -1, 1),
                ("scale_q12", -INT16, INT16), ("min_cdeg", -INT16, INT16),
                ("max_cdeg", -INT16, INT16), ("max_speed_cdeg_per_ms", 1, 65535))
# Coupling sums A.q in integers; below 2^29 they stay small ints on 32-bit ports.
COUPLING_BOUND = 1 << 29


def bad_loop_field(values):
    """Index of the first out-of-range value of (hz, decimation, watchdog_ms, action), or -1."""
    for i in range(len(LOOP_LIMITS)):
        _, lo, hi = LOOP_LIMITS[i]
        if not lo <= values[i] <= hi:
            return i
    return -1


def bad_joint_field(values, n_joints):
    """Index of the first bad field of a SET_JOINT tuple (joint, zero, ..., speed), or -1."""
    for i in range(len(JOINT_LIMITS)):
        _, lo, hi = JOINT_LIMITS[i]
        if not lo <= values[i] <= hi:
            return i
    if values[0] >= n_joints:
        return 0
    if values[2] == 0:
        return 2
    if values[3] == 0:
        return 3
    if values[4] >= values[5]:
        return 4
    return -1


def _fail(field, problem):
    raise ValueError("%s: %s" % (field, problem))


def _get(table, key, field, kind):
    if not isinstance(table, dict) or key not in table:
        _fail(field + "." + key if field else key, "missing")
    v = table[key]
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        _fail(field + "." + key if field else key, "must be an integer")
    if kind is not int and not isinstance(v, kind):
        _fail(field + "." + key if field else key, "must be a " + kind.__name__)
    return v


def _indices(table, field, n):
    v = _get(table, "joints", field, list)
    if not v:
        _fail(field + ".joints", "is empty")
    for i in v:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            _fail(field + ".joints", "index %r out of 0..%d" % (i, n - 1))
    return v


def _check_buses(board):
    buses = _get(board, "buses", "board", dict)
    for name in buses:
        b = buses[name]
        field = "board.buses." + name
        kind = _get(b, "kind", field, str)
        if kind not in BUS_FIELDS:
            _fail(field + ".kind", "must be i2c, spi or uart")
        for key in BUS_FIELDS[kind]:
            _get(b, key, field, int)
    return buses


def _check_joints(cfg):
    joints = _get(cfg, "joints", "", list)
    if not 1 <= len(joints) <= MAX_JOINTS:
        _fail("joints", "needs 1..%d joints" % MAX_JOINTS)
    for i in range(len(joints)):
        j = joints[i]
        field = "joints[%d]" % i
        values = [i]
        for name, _, _ in JOINT_LIMITS[1:]:
            values.append(_get(j, name, field, int))
        bad = bad_joint_field(values, len(joints))
        if bad >= 0:
            name, _, _ = JOINT_LIMITS[bad]
            if bad == 4:
                _fail(field + ".min_cdeg", "must be below max_cdeg")
            _fail(field + "." + name, "out of range (%r)" % values[bad])
    return joints


def _check_motors(cfg, n_joints):
    motors = _get(cfg, "motors", "", list)
    if not 1 <= len(motors) <= MAX_JOINTS:
        _fail("motors", "needs 1..%d motors" % MAX_JOINTS)
    for m in range(len(motors)):
        field = "motors[%d]" % m
        d = _get(motors[m], "direction", field, int)
        if d not in (1, -1):
            _fail(field + ".direction", "must be 1 or -1")
        lo = _get(motors[m], "min_cdeg", field, int)
        hi = _get(motors[m], "max_cdeg", field, int)
        off = _get(motors[m], "offset_cdeg", field, int)
        if not -INT16 <= lo < hi <= INT16:
            _fail(field + ".min_cdeg", "must be below max_cdeg, both within +-32767")
        if max(-lo, hi) + abs(off) > INT16:
            _fail(field + ".offset_cdeg", "shifts the range out of +-32767")
    if "coupling" not in cfg:
        _fail("coupling", "missing (null for a hand driven one to one)")
    if cfg["coupling"] is None and len(motors) != n_joints:
        _fail("motors", "a hand without coupling needs one motor per joint")
    return motors


def _check_coupling(cfg, joints, motors):
    c = cfg["coupling"]
    if c is None:
        return
    a = _get(c, "a_q12", "coupling", list)
    b = _get(c, "b_cdeg", "coupling", list)
    if len(a) != len(motors) or len(b) != len(motors):
        _fail("coupling", "needs one row of a_q12 and one b_cdeg per motor")
    for m in range(len(a)):
        row = a[m]
        field = "coupling.a_q12[%d]" % m
        if not isinstance(row, list) or len(row) != len(joints):
            _fail(field, "needs one entry per joint")
        bound = 0
        for k in range(len(row)):
            v = row[k]
            if isinstance(v, bool) or not isinstance(v, int) or not -INT16 <= v <= INT16:
                _fail("%s[%d]" % (field, k), "must be an integer within +-32767")
            bound += abs(v) * max(-joints[k]["min_cdeg"], joints[k]["max_cdeg"])
        if bound >= COUPLING_BOUND:
            _fail(field, "too large for the board's integer arithmetic")
        if isinstance(b[m], bool) or not isinstance(b[m], int) or not -INT16 <= b[m] <= INT16:
            _fail("coupling.b_cdeg[%d]" % m, "must be an integer within +-32767")


def _check_groups(cfg, key, buses, n):
    groups = _get(cfg, key, "", list)
    seen = [0] * n
    for g in range(len(groups)):
        field = "%s[%d]" % (key, g)
        grp = groups[g]
        _get(grp, "module", field, str)
        _get(grp, "cls", field, str)
        if _get(grp, "bus", field, str) not in buses:
            _fail(field + ".bus", "no bus %r on this board" % grp["bus"])
        _get(grp, "args", field, dict)
        for i in _indices(grp, field, n):
            seen[i] += 1
    for i in range(n):
        if seen[i] != 1:
            _fail(key, "%s %d is covered %d times, must be once"
                  % ("joint" if key == "encoders" else "motor", i, seen[i]))


def check(cfg):
    """Raise ValueError("field: problem") unless cfg is a complete, consistent config."""
    if not isinstance(cfg, dict):
        _fail("config", "must be a JSON object")
    if _get(cfg, "format", "", int) != FORMAT:
        _fail("format", "must be %d" % FORMAT)
    board = _get(cfg, "board", "", dict)
    _get(board, "hal", "board", str)
    buses = _check_buses(board)
    loop = _get(cfg, "loop", "", dict)
    values = [_get(loop, name, "loop", int) for name, _, _ in LOOP_LIMITS]
    bad = bad_loop_field(values)
    if bad >= 0:
        name, _, _ = LOOP_LIMITS[bad]
        _fail("loop." + name, "out of range (%r)" % values[bad])
    joints = _check_joints(cfg)
    motors = _check_motors(cfg, len(joints))
    _check_coupling(cfg, joints, motors)
    _check_groups(cfg, "encoders", buses, len(joints))
    _check_groups(cfg, "servos", buses, len(motors))


def load(path):
    """(config dict, CRC-32 of the file) of a checked config file; ValueError if refused."""
    import json
    try:
        from binascii import crc32
    except ImportError:  # CPython on the host
        from zlib import crc32
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ValueError("%s: cannot be read" % path)
    try:
        cfg = json.loads(data)
    except ValueError:
        raise ValueError("%s: not valid JSON" % path)
    check(cfg)
    return cfg, crc32(data) & 0xFFFFFFFF
