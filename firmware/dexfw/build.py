# Build the HAL buses and the drivers a config names. Runs at boot only.


def make_buses(hal, buses):
    """{bus name: HAL bus object} for the board's buses, plus {bus name: cs Pin} for SPI."""
    out = {}
    cs = {}
    for name in buses:
        b = buses[name]
        kind = b["kind"]
        if kind == "i2c":
            out[name] = hal.I2C(b["id"], b["scl"], b["sda"], b["freq"])
        elif kind == "spi":
            out[name] = hal.SPI(b["id"], b["sck"], b["mosi"], b["miso"], b["baudrate"])
            if "cs" in b:
                cs[name] = hal.Pin(b["cs"], hal.Pin.OUT)
        else:
            out[name] = hal.UART(b["id"], b["baudrate"], b["tx"], b["rx"])
    return out, cs


def import_class(module, cls):
    """The class cls of module (a dotted name), with an error that names both."""
    try:
        mod = __import__(module, None, None, [cls])
    except ImportError as e:
        raise ValueError("driver module %s cannot be imported (%s)" % (module, e))
    try:
        return getattr(mod, cls)
    except AttributeError:
        raise ValueError("driver module %s has no %s" % (module, cls))


def make_drivers(groups, field, bus_objects, cs_pins, hal=None):
    """One driver per group: cls(bus, joints=(...), **args), lists in args as tuples."""
    out = []
    for g in range(len(groups)):
        grp = groups[g]
        try:
            cls = import_class(grp["module"], grp["cls"])
        except ValueError as e:
            raise ValueError("%s[%d]: %s" % (field, g, e))
        kwargs = {"joints": tuple(grp["joints"])}
        args = grp["args"]
        for key in args:
            v = args[key]
            kwargs[key] = tuple(v) if isinstance(v, list) else v
        if grp["bus"] in cs_pins:
            kwargs["cs"] = cs_pins[grp["bus"]]
        if getattr(cls, "NEEDS_CLOCK", False):
            kwargs["clock"] = hal
        try:
            out.append(cls(bus_objects[grp["bus"]], **kwargs))
        except Exception as e:  # a driver that cannot start: name the group, refuse all
            raise ValueError("%s[%d] (%s): %s" % (field, g, grp["cls"], e))
    return out


def build(hal, cfg):
    """(encoders, servos) for a checked config; ValueError naming the group if one fails."""
    bus_objects, cs_pins = make_buses(hal, cfg["board"]["buses"])
    encoders = make_drivers(cfg["encoders"], "encoders", bus_objects, cs_pins, hal)
    servos = make_drivers(cfg["servos"], "servos", bus_objects, cs_pins, hal)
    return encoders, servos
