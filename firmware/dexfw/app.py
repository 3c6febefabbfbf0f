# Boot: load /dexlink.json, import the HAL it names, build the drivers, run the loop.
# A config that is refused (or a driver that cannot start) never runs half-configured:
# the board runs unconfigured instead, IDLE, answering the host and repeating
# FAULT(config) with a LOG line that names the field.
import sys

from dexfw import config, rawrepl
from dexfw.loop import Firmware
from dexproto import catalog

CONFIG_PATH = "/dexlink.json"
DEFAULT_HAL = "dexfw.hal_machine"


def _hal_name(path):
    """The HAL module the config names, or the real boards' HAL if that cannot be read."""
    try:
        import json
        with open(path) as f:
            return json.load(f)["board"]["hal"]
    except Exception:
        return DEFAULT_HAL


def make_firmware(path=CONFIG_PATH, hal=None, console=None):
    """A Firmware for the config at path: configured, or unconfigured with the reason."""
    if hal is None:
        hal = __import__(_hal_name(path), None, None, ["Console"])
    if console is None:
        console = hal.Console()
    try:
        cfg, crc = config.load(path)
        from dexfw.build import build
        encoders, servos = build(hal, cfg)
    except ValueError as e:
        fw = Firmware(hal, console, None, config_error=str(e))
        fw.link.log(catalog.LOG_ERROR, ("config refused: %s" % e).encode())
        return fw
    fw = Firmware(hal, console, cfg, encoders, servos, crc,
                  cfg["board"].get("name", "").encode())
    if second_core(cfg):
        fw.start_core1()
    return fw


def second_core(cfg):
    """Whether TELEMETRY is made on a second core (dexfw.telemetry): the board's
    description says it has one (second_core: the RP2040 and RP2350), and this port runs
    a thread truly in parallel: no GIL (rp2, where the new thread runs on core 1; the
    Unix port too, where the tests run it). The ESP32-S3's port has a GIL (its threads
    take turns): never there, whatever a board file says. The virtual board timed as a
    Pico runs the single-core path (sim/board/vtarget.py says why)."""
    if not cfg["board"].get("second_core"):
        return False
    return getattr(sys.implementation, "_thread", None) == "unsafe"


def run(path=CONFIG_PATH):
    """Run the firmware until the host sends REPL; then hand the port back to the REPL.

    The console is claimed before the drivers are built (their setup takes a while, and
    the host may already be talking), and released however this ends: a crash leaves a
    REPL that Ctrl-C reaches, with the traceback on the console.
    """
    hal = __import__(_hal_name(path), None, None, ["Console"])
    console = hal.Console()
    if rawrepl.resume(console):  # a soft reset in the raw REPL a break-in opened
        return
    console.claim()
    fw = None
    try:
        fw = make_firmware(path, hal, console)
        fw.run()
    finally:
        try:
            if fw is not None:
                fw.stop()  # torque off: a crashed firmware leaves no servo driven
        finally:
            console.release()
    sys.stdout.write("\r\ndexfw: stopped, REPL\r\n")
    rawrepl.after_firmware(fw, console)  # mpremote's break-in: its raw REPL
