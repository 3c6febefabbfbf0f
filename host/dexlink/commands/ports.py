"""`dexlink ports`: serial ports that look like boards, and whether dexlink firmware answers."""
from __future__ import annotations

import argparse

from serial.tools import list_ports

from dexlink.link import DEFAULT_BAUD, Link, LinkError

# USB vendor ids of the boards and USB-serial bridges a rig is built from.
BOARD_VIDS = {
    0x2E8A: "Raspberry Pi (RP2040/RP2350)",
    0x303A: "Espressif (ESP32-S3 USB)",
    0x10C4: "Silicon Labs CP210x bridge",
    0x1A86: "WCH CH340/CH9102 bridge",
    0x0403: "FTDI bridge",
    0xF055: "MicroPython (pyboard)",
    0x239A: "Adafruit",
}


def looks_like_board(p) -> bool:
    return p.vid in BOARD_VIDS or "ACM" in p.device or "usbmodem" in p.device


def probe(url: str, baud: int, timeout: float) -> str:
    """What answers on a port: the dexlink firmware's description, or why not."""
    link = Link(url, baud, handshake_timeout=timeout, reconnect=False)
    try:
        link.open()
    except LinkError as e:
        # the error names the port and how to flash; here the port heads the line already
        reason = str(e).split("; flash")[0].replace("open %s:" % url, "open:")
        reason = reason.replace(" from %s" % url, "").replace("%s: " % url, "")
        return "no dexlink firmware: " + reason
    try:
        return "dexlink firmware: " + link.describe_board()
    finally:
        link.close()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ports", help="list serial ports that look like boards and probe them",
        description="List the serial ports that look like boards (by USB vendor, or ACM / "
                    "usbmodem devices) and ask each for a dexlink HELLO. Extra ports or "
                    "pyserial URLs (a virtual board's pty, socket://...) can be probed too.",
        epilog="examples:\n  dexlink ports\n  dexlink ports --all --no-probe\n"
               "  dexlink ports /dev/pts/5 socket://192.168.1.20:4000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="*", metavar="URL", help="more ports or URLs to probe")
    p.add_argument("--all", action="store_true", help="list every serial port, not only board-like ones")
    p.add_argument("--no-probe", action="store_true", help="only list, do not send HELLO")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="baud rate (default %(default)s)")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds to wait for each board's answer (default 1)")
    p.set_defaults(func=ports)


def ports(args) -> int:
    found = [p for p in sorted(list_ports.comports(), key=lambda p: p.device)
             if args.all or looks_like_board(p)]
    rows = [(p.device, "%s%s" % (p.description or "", " [%04x:%04x %s]" % (
        p.vid, p.pid, BOARD_VIDS.get(p.vid, "")) if p.vid is not None else "")) for p in found]
    rows += [(url, "given on the command line") for url in args.urls]
    if not rows:
        print("no board-like serial ports found (plug a board in, or try `dexlink ports --all`; "
              "`dexlink session --sim` runs a virtual board)")
        return 0
    silent_urls = 0
    for device, what in rows:
        print("%s  %s" % (device, what.strip()))
        if not args.no_probe:
            status = probe(device, args.baud, args.timeout)
            print("    " + status)
            silent_urls += device in args.urls and not status.startswith("dexlink firmware")
    # Ports named on the command line are expected to answer: say so in the exit status.
    return 1 if silent_urls else 0
