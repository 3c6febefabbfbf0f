"""What the virtual board sustains: the real firmware's loop at 1000 Hz for 16 and 22
joints (rate, cycle-time distribution, overruns), and its serial port's throughput.

Each hand: a fresh virtual board flashed with `dexlink flash`'s code path, set to
1000 Hz with telemetry every 10th cycle, in TELEOP (simulated operator moving), watched
for --seconds through dexlink.link. Cycle times are the firmware's own (cycle_us of each
TELEMETRY: a sample of one cycle in ten; worst and overruns count every cycle).
Baseline, same run: an empty cycle on the same ticks_us deadlines in the bare
interpreter (no devices, no pty), i.e. what this host's scheduler allows at all.
For iso16, the same figures again under each injected fault (a few seconds each, after a
no-fault run of the same length for comparison). Throughput: a program holding the console
writes (board -> host) or reads (host -> board) as fast as it can through the pseudo-terminal.

With --target BOARD the virtual board runs at that real board's speed (dexlink.targets:
the firmware's interpretation scaled, the buses' time waited out): the figures are the
loop rate such a board holds, printed beside the cost model's, and at the end, over the
hands run, how far the board's CPU time per cycle is from the model's: their geometric
mean says where targets.VBOARD_EMULATED_PER_X86 would centre them, the spread around it
is what targets.VBOARD_UNCERTAINTY must cover (the board follows the firmware's x86
costs, the model its tables: targets.py says where they part).

    .venv/bin/python bench/vboard.py                # 60 s per hand
    .venv/bin/python bench/vboard.py --seconds 5    # a quick look
    .venv/bin/python bench/vboard.py --target pico --seconds 10 --hands iso16,iso16spi,iso22,tendon16
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import serial

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "protocol"))
from dexlink import targets  # noqa: E402
from dexlink.link import Link, NackError  # noqa: E402
from dexlink.sim import VirtualBoard  # noqa: E402
from dexlink.sim.flashing import flash_virtual  # noqa: E402
from dexlink.sim.vboard import MICROPYTHON  # noqa: E402
from dexproto import catalog as C  # noqa: E402

HANDS = (("iso16", 16), ("iso22", 22))
HZ = 1000
DECIMATION = 10

BASELINE = """
import time
PERIOD = 1000000 // %d
def run(seconds):
    n = over = 0
    worst = 0
    deadline = time.ticks_us()
    stop = time.ticks_add(deadline, seconds * 1000000)
    while time.ticks_diff(stop, deadline) > 0:
        start = time.ticks_us()
        took = time.ticks_diff(time.ticks_us(), start)
        worst = max(worst, took)
        deadline = time.ticks_add(deadline, PERIOD)
        wait = time.ticks_diff(deadline, time.ticks_us())
        if wait > 0:
            time.sleep_us(wait)
        else:
            over += 1
            if -wait > PERIOD:
                deadline = time.ticks_us()
        n += 1
    return n, over
t0 = time.ticks_us()
n, over = run(%d)
print(n, over, time.ticks_diff(time.ticks_us(), t0))
"""

WRITER = """
import time, vconsole
c = vconsole.Console()
c.claim()
buf = bytearray(b"U" * 4096)
stop = time.ticks_add(time.ticks_ms(), %d)
while time.ticks_diff(stop, time.ticks_ms()) > 0:
    c.write(buf)
c.release()
"""

READER = """
import time, vconsole
c = vconsole.Console()
c.claim()
buf = bytearray(4096)
got = 0
t0 = None
while got < %d:
    n = c.readinto(buf)
    if n:
        if t0 is None:
            t0 = time.ticks_us()
        got += n
c.release()
print("read", got, time.ticks_diff(time.ticks_us(), t0))
"""


def baseline(seconds: float) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py") as f:
        f.write(BASELINE % (HZ, max(1, int(seconds))))
        f.flush()
        out = subprocess.run([str(MICROPYTHON), f.name], capture_output=True, text=True).stdout
    n, over, us = (int(x) for x in out.split())
    return "%.0f Hz, %d overruns of %d cycles (%.2f %%)" % (n / us * 1e6, over, n, 100 * over / n)


FAULTS = (("none", {}), ("magnet_missing", dict(joint=3)), ("servo_silent", dict(joint=5)),
          ("servo_bad_checksum", dict(joint=6)), ("clock", dict(ppm=500)),
          ("line_noise", dict(drop_rate=1e-3, garbage_rate=1e-3)))


def start_teleop(link: Link) -> None:
    link.set_config(HZ, DECIMATION, 250, C.WATCHDOG_HOLD)
    for _ in range(100):
        try:
            link.set_mode(C.MODE_TELEOP)
            return
        except NackError:  # busy until the servos' positions are known
            time.sleep(0.05)


def measure(link: Link, sub, seconds: float) -> dict:
    """Loop figures over `seconds` of TELEOP, from STATS and the TELEMETRY stream."""
    sub.drain()
    s0, h0 = link.get_stats(), time.monotonic()
    time.sleep(seconds)
    s1, h1 = link.get_stats(), time.monotonic()
    tel = sub.drain()
    cyc = np.array([m.cycle_us for m in tel])
    board_us = np.unwrap(np.array([m.board_us for m in tel], dtype=float), period=2.0 ** 30)
    cycles = np.array([m.cycle for m in tel])
    return dict(
        rate_board=(cycles[-1] - cycles[0]) / (board_us[-1] - board_us[0]) * 1e6,
        rate_host=(s1.cycles - s0.cycles) / (h1 - h0),
        median=np.median(cyc), p99=np.percentile(cyc, 99), worst=s1.worst_cycle_us,
        overruns=s1.overruns - s0.overruns, cycles=s1.cycles - s0.cycles,
        telemetry_hz=len(tel) / (h1 - h0))


def teleop(board: VirtualBoard, seconds: float, faults: bool) -> tuple[dict, list]:
    """The loop's figures in TELEOP; with faults, also the rate under each injected fault."""
    under = []
    with Link(board.port, reconnect=False, handshake_timeout=10) as link:
        start_teleop(link)
        sub = link.subscribe("TELEMETRY")
        time.sleep(1.0)  # warm up: goals slewed onto the operator
        main = measure(link, sub, seconds)
        if faults:
            each = max(2.0, seconds / 10)
            for name, kw in FAULTS:
                if name != "none":
                    board.inject(name, **kw)
                under.append((name, measure(link, sub, each)))
                board.inject("clear")
    return main, under


def throughput(seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as fs, VirtualBoard(fs) as board:
        board.wait_for(lambda b: b.state == "repl", 10)
        with serial.Serial(board.port, timeout=0.5) as port:
            (Path(fs) / "w.py").write_text(WRITER % int(seconds * 1000))
            port.write(b"\x03import w\r")
            port.read_until(b"import w\r\n")
            got, t0 = 0, time.monotonic()
            tail = b""
            while True:
                chunk = port.read(max(1, port.in_waiting))
                got += chunk.count(b"U")
                tail = (tail + chunk)[-8:]
                if tail.endswith(b">>> "):
                    break
            out_rate = got / (time.monotonic() - t0)
            total = int(2e6 * max(1.0, seconds / 5))
            (Path(fs) / "r.py").write_text(READER % total)
            port.write(b"import r\r")
            port.read_until(b"import r\r\n")
            time.sleep(0.3)  # let the program claim the console first
            block = b"\x55" * 65536
            for i in range(0, total, len(block)):
                port.write(block[: min(len(block), total - i)])
            port.timeout = 60
            line = port.read_until(b">>> ").decode(errors="replace")
            words = line.split("read", 1)[1].split()
            in_rate = int(words[0]) / (int(words[1]) / 1e6)
    return out_rate, in_rate


def compare(model, r: dict) -> float:
    """Print the board's loop against the model's; return the board's CPU time per cycle
    (less the I2C/SPI waits, the same on both) over the model's. An overrunning loop's
    cycle is its period (1 / rate: every cycle's work, telemetry's too); a loop that holds
    the asked rate sleeps the rest of its period: its cycle is the median cycle_us."""
    held = r["overruns"] < 0.05 * max(1, r["cycles"])
    cpu = (r["median"] if held else 1e6 / r["rate_board"]) - model.blocking_us
    ratio = cpu / model.cpu_us
    u = targets.VBOARD_UNCERTAINTY
    print("  against the model: loop %.0f Hz / %.0f Hz%s; CPU %.0f us / %.0f us a cycle = %.2f "
          "(%s +-%.0f %%)" % (r["rate_board"], model.max_hz,
                              " (both hold the asked %d Hz)" % model.hz if held and
                              model.max_hz >= model.hz else "", cpu, model.cpu_us, ratio,
                              "within" if abs(ratio - 1) <= u else "OUTSIDE", 100 * u))
    return ratio


def summarize(target: str, against: dict) -> None:
    """The geometric mean of the CPU ratios (where the factor would centre them) and the
    spread around it."""
    mean = float(np.exp(np.mean(np.log(list(against.values())))))
    spread = [v / mean for v in against.values()]
    print("virtual board as a %s against the cost model, CPU a cycle: %s; geometric mean %.2f "
          "(VBOARD_EMULATED_PER_X86 %.0f would centre it: about %.0f), spread around it "
          "%.2f-%.2f (VBOARD_UNCERTAINTY +-%.0f %%)"
          % (target, ", ".join("%s %.2f" % kv for kv in against.items()), mean,
             targets.VBOARD_EMULATED_PER_X86, targets.VBOARD_EMULATED_PER_X86 / mean,
             min(spread), max(spread), 100 * targets.VBOARD_UNCERTAINTY))


def hwconfig_joints(hand: str) -> list:
    from dexlink.hwconfig import load_hand
    return load_hand(hand)["joints"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: .venv/bin/python bench/vboard.py --seconds 5")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds per hand (default 60)")
    p.add_argument("--target", choices=[*targets.TARGETS, targets.VIRTUAL],
                   default=targets.VIRTUAL,
                   help="run at this real board's speed (default virtual: this host's full speed)")
    p.add_argument("--hands", default=",".join(h for h, _ in HANDS),
                   help="comma-separated hands (default %(default)s)")
    args = p.parse_args()
    hands = [(h, len(hwconfig_joints(h))) for h in args.hands.split(",")]
    load = os.getloadavg()
    print("host: %d CPUs, load average %.1f / %.1f / %.1f (1/5/15 min): the virtual board "
          "shares them" % (os.cpu_count(), *load))
    print("baseline (empty cycle, bare interpreter, %d Hz deadlines): %s"
          % (HZ, baseline(min(args.seconds, 10))))
    timed = args.target != targets.VIRTUAL
    against = {}  # hand -> the board's CPU time per cycle over the model's
    for hand, n in hands:
        if timed:
            model = targets.hand_cost(hand, args.target)
            print("%s timed as a %s: the cost model holds %d Hz (cycle %.0f us)%s"
                  % (hand, args.target, model.holds_hz, model.cycle_us,
                     "; it guesses " + ", ".join(model.guessed) if model.guessed else ""))
        with VirtualBoard() as board:
            flash_virtual(board, ROOT / "hardware" / "hands" / ("%s.toml" % hand),
                          target=args.target)
            r, under = teleop(board, args.seconds, faults=hand == "iso16" and not timed)
        print("%s (%d joints) at %d Hz for %.0f s: loop %.1f Hz (board clock) / %.1f Hz (host "
              "clock); cycle median %d us, p99 %d us, worst %d us; overruns %d of %d cycles "
              "(%.2f %%); telemetry %.1f frames/s"
              % (hand, n, HZ, args.seconds, r["rate_board"], r["rate_host"], r["median"],
                 r["p99"], r["worst"], r["overruns"], r["cycles"],
                 100 * r["overruns"] / max(1, r["cycles"]), r["telemetry_hz"]))
        if timed:
            against[hand] = compare(model, r)
        for name, f in under:
            print("  %s, fault %-18s loop %.1f Hz, cycle median %d us, p99 %d us, overruns %.2f %%"
                  % (hand, name + ":", f["rate_host"], f["median"], f["p99"],
                     100 * f["overruns"] / max(1, f["cycles"])))
    if timed:
        summarize(args.target, against)
        return 0
    out_rate, in_rate = throughput(min(args.seconds, 5))
    print("serial throughput through the pty: board -> host %.2f MB/s, host -> board %.2f MB/s"
          % (out_rate / 1e6, in_rate / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
