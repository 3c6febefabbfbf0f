# Builds the simulated rig from the compiled config's wiring (docs/interfaces.md) into
# vworld: the physics (vphysics: the servos' motion, the operator's hand), then each
# encoder / servo group's chips of its driver class on the simulated bus with that bus's
# id. vmachine asks here for its buses: the first one asked for builds the rig from the
# board filesystem's dexlink.json, unless load_rig(cfg) came first.
import vi2c
import vphysics
import vservo
import vspi
import vtarget
import vworld
import vworldlink

loaded = False  # a rig was built (possibly an empty one: no dexlink.json)


def bus(kind, bus_id, factory=None):
    """vworld.bus, with the rig built first if it was not yet."""
    if not loaded:
        load_default()
    return vworld.bus(kind, bus_id, factory)


def load_default(path="dexlink.json"):
    """Build the rig from the board filesystem's dexlink.json; an empty rig without one."""
    try:
        import json
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        cfg = None
    load_rig(cfg)


def load_rig(cfg, rng_seed=None):
    """Build every simulated device of the config's wiring (replacing any rig)."""
    global loaded
    vworld.clear()
    loaded = True
    vtarget.configure(cfg)  # a virtual board timed as a real target, or full speed
    if cfg is None:
        return
    if rng_seed is None:
        rng_seed = cfg.get("sim", {}).get("seed", 1)
    vworld.seed(rng_seed)
    build(cfg, rng_seed)


def _i2c(bus_id):
    return vworld.bus("i2c", bus_id, vi2c.I2CBus)


def _args(group):
    return group.get("args") or {}


def _wire_i2c_sensors(group, bus, chip_class, addr):
    args = _args(group)
    mux_addr = args.get("mux_addr")
    joints = group["joints"]
    i2c = _i2c(bus["id"])
    if mux_addr is None:
        for j in joints:
            i2c.add(addr, chip_class(j))
        return
    mux = i2c.mux(mux_addr)
    channels = args.get("channels") or ()
    if len(channels) != len(joints):
        raise ValueError("sim wiring: %s on %s needs one mux channel per joint"
                         % (group.get("cls"), group.get("bus")))
    for k in range(len(joints)):
        mux.add(channels[k], addr, chip_class(joints[k]))


def _wire_as5048a(group, bus):
    if bus.get("cs") is None:
        raise ValueError("sim wiring: bus %r has no 'cs' pin for AS5048AChain"
                         % group.get("bus"))
    spi = vworld.bus("spi", bus["id"], vspi.SPIBus)
    spi.add_chain(bus["cs"], group["joints"])


def _wire_servo_bus(group, bus, bus_class):
    line = vworld.bus("uart", bus["id"], bus_class)
    if not isinstance(line, bus_class):
        raise ValueError("sim wiring: %r carries two servo protocols" % group.get("bus"))
    ids = _args(group).get("ids") or ()
    joints = group["joints"]
    if len(ids) != len(joints):
        raise ValueError("sim wiring: %s on %s needs one id per joint"
                         % (group.get("cls"), group.get("bus")))
    for k in range(len(ids)):
        line.add_servo(ids[k], joints[k])


def _wire_pca9685(group, bus):
    args = _args(group)
    chip = vi2c.PCA9685(args.get("channels") or (), group["joints"])
    _i2c(bus["id"]).add(args.get("addr", 0x40), chip)


def build(cfg, seed):
    """Make the physics, then wire every group of cfg (into vworld)."""
    # The one place a rig chooses its physics (vphysics: the interface a physics world
    # in another process implements too): the host's world when the supervisor attached
    # one to this boot (vworldlink), the kinematic model otherwise.
    fds = vworldlink.attached_fds()
    if fds is None:
        physics = vphysics.KinematicPhysics(cfg.get("joints") or (), seed)
    else:
        physics = vworldlink.WorldPhysics(cfg.get("joints") or (), fds)
    vworld.physics = physics
    vworld.operator = physics.operator
    buses = cfg["board"]["buses"]
    for section in ("encoders", "servos"):
        for group in cfg.get(section) or ():
            name = group.get("bus")
            if name not in buses:
                raise ValueError("sim wiring: %s group names bus %r, not in board.buses"
                                 % (section, name))
            bus = buses[name]
            cls = group.get("cls")
            if cls == "AS5600Mux":
                _wire_i2c_sensors(group, bus, vi2c.AS5600, 0x36)
            elif cls == "MT6701Mux":
                _wire_i2c_sensors(group, bus, vi2c.MT6701, 0x06)
            elif cls == "AS5048AChain":
                _wire_as5048a(group, bus)
            elif cls == "FeetechBus":
                _wire_servo_bus(group, bus, vservo.FeetechBus)
            elif cls == "DynamixelBus":
                _wire_servo_bus(group, bus, vservo.DynamixelBus)
            elif cls == "PCA9685Servos":
                _wire_pca9685(group, bus)
            else:
                raise ValueError("sim wiring: no simulated device for driver class %r" % cls)
