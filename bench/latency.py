"""Latency on the virtual board (the real firmware on MicroPython, behind a pty).

HOST mode, host to servo: each command is a TARGETS write stamped on the host clock just
before it goes out; its arrival at the servo is the board cycle whose telemetry first shows
the new goals (the cycle reads commands right after its start and writes the servos in
the same cycle), placed on the host clock by the TIME_SYNC mapping (dexlink.clock).
Measured: mapped start of that cycle - write time. The servo write follows the cycle
start by the cycle's sampling and mapping time (telemetry's cycle_us, printed too).

Every command changes a 12-bit pattern of 0.1-degree steps across twelve joints (within
the firmware's slew limit, so a goal equals its target in one cycle), so each telemetry
sample names the command it carries without ambiguity.

TELEOP, exoskeleton to servo: one board cycle by design; the telemetry shows it: the goal
of a sample equals the exoskeleton angle sampled in the same cycle (unless the joint was
limited or held), and the cycle's compute time is the latency.

    python bench/latency.py                 # 10 000 commands
    python bench/latency.py --count 2000 --rate 200
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from dexlink.hwconfig import HANDS, compile_config  # noqa: E402
from dexlink.link import Link  # noqa: E402
from dexlink.sim import VirtualBoard  # noqa: E402
from dexlink.sim.flashing import flash_virtual  # noqa: E402
from dexproto import catalog  # noqa: E402

ID_JOINTS = 12
STEP_CDEG = 10


def pattern(k: int, base: list[int]) -> list[int]:
    return [b + STEP_CDEG * ((k >> j) & 1) if j < ID_JOINTS else b for j, b in enumerate(base)]


def decode(goals: list[int], base: list[int]) -> int | None:
    """The command number (mod 4096) a telemetry sample's goals carry, or None mid-way."""
    k = 0
    for j in range(ID_JOINTS):
        d = goals[j] - base[j]
        if d == STEP_CDEG:
            k |= 1 << j
        elif d != 0:
            return None
    return k


def host_latency(link: Link, base: list[int], count: int, rate: float) -> tuple[np.ndarray, list]:
    tele = link.subscribe("TELEMETRY", maxsize=200000)
    link.set_mode(catalog.MODE_HOST)
    link.send_targets(pattern(0, base))
    time.sleep(3.0)  # the clock estimate settles; the hand reaches the base pose
    tele.drain()
    sent = np.zeros(count, dtype=np.int64)
    period = 1.0 / rate
    t0 = time.monotonic()
    for k in range(1, count + 1):
        due = t0 + k * period
        left = due - time.monotonic()
        if left > 0:
            time.sleep(left)
        sent[k - 1] = time.monotonic_ns()
        link.send_targets(pattern(k, base))
    time.sleep(0.3)
    samples = tele.drain()
    link.unsubscribe(tele)
    on_servo, cycle_us = place_commands(link, samples, base, count)
    latency = np.where(on_servo >= 0, on_servo - sent, -1)
    return latency, cycle_us


def place_commands(link: Link, samples, base: list[int], count: int) -> tuple[np.ndarray, list]:
    """Per command 1..count, the host time (ns) of the first board cycle whose goals carry
    its id (-1: never seen), and those cycles' compute times (us)."""
    on_servo = np.full(count, -1, dtype=np.int64)
    cycle_us = []
    next_k = 1  # the oldest command not seen yet
    for m in samples:
        code = decode(m.column("goal_cdeg"), base)
        if code is None:
            continue
        # The first sample carrying command k places it; commands between next_k and k
        # were superseded within one cycle (never on a servo alone) and stay unmeasured.
        for k in range(next_k, min(count, next_k + 64) + 1):
            if (k & 0xFFF) == code:
                on_servo[k - 1] = link.clock.to_host_ns(m.board_us, m.host_ns)
                cycle_us.append(m.cycle_us)
                next_k = k + 1
                break
    return on_servo, cycle_us


def teleop_report(link: Link, seconds: float) -> None:
    tele = link.subscribe("TELEMETRY", maxsize=100000)
    link.set_mode(catalog.MODE_TELEOP)
    time.sleep(seconds)
    samples = tele.drain()
    link.unsubscribe(tele)
    same = moving = 0
    cycle = []
    for m in samples:
        if m.mode != catalog.MODE_TELEOP:
            continue
        cycle.append(m.cycle_us)
        for exo, goal, _, status in m.items:
            if status & (catalog.ST_LIMITED | catalog.ST_HELD):
                continue
            moving += 1
            same += exo == goal
    cycle = np.array(cycle)
    print("TELEOP exo -> servo: %d joint samples (not limited or held); goal == exo of the same "
          "cycle in %.2f%%" % (moving, 100.0 * same / max(1, moving)))
    if len(cycle):
        print("  latency = within one cycle: sampling to servo write, cycle compute time median "
              "%d us, p99 %d us, worst %d us" % (np.median(cycle), np.percentile(cycle, 99), cycle.max()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: python bench/latency.py --count 2000")
    p.add_argument("--count", type=int, default=10000, help="HOST-mode commands (default 10000)")
    p.add_argument("--rate", type=float, default=250.0, help="commands per second (default 250)")
    p.add_argument("--hand", default=str(HANDS / "iso16.toml"), help="hand to flash")
    p.add_argument("--teleop-seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    cfg = compile_config(args.hand, "virtual")
    base = [min(max(0, j["min_cdeg"]), j["max_cdeg"] - STEP_CDEG) for j in cfg["joints"]]
    with VirtualBoard() as board:
        t = time.monotonic()
        flash_virtual(board, args.hand)
        print("virtual board flashed with %s in %.1f s" % (Path(args.hand).name, time.monotonic() - t))
        with Link(board.port) as link:
            print(link.describe_board())
            link.set_config(cfg["loop"]["hz"], 1, 500)  # telemetry every cycle: exact cycles
            teleop_report(link, args.teleop_seconds)
            latency, cycle_us = host_latency(link, base, args.count, args.rate)
            link.set_mode(catalog.MODE_IDLE)
            stats = link.stats_snapshot()
            clock = link.clock.summary()
    seen = latency[latency >= 0] / 1e6
    lost = int((latency < 0).sum())
    print("HOST host -> servo over %d commands at %.0f Hz: %d placed; %d superseded within one "
          "board cycle by the next command (never on a servo alone)" % (
              args.count, args.rate, len(seen), lost))
    if len(seen):
        print("  median %.3f ms  p99 %.3f ms  p99.9 %.3f ms  worst %.3f ms  best %.3f ms" % (
            np.median(seen), np.percentile(seen, 99), np.percentile(seen, 99.9), seen.max(),
            seen.min()))
        print("  (to the start of the cycle that wrote the servo; the write follows by the cycle's "
              "compute time: median %d us)" % np.median(cycle_us))
    print("clock: drift %s ppm, best sync round trip %s us; link: %d drops, %d gaps, %.0f frames/s"
          % (clock["drift_ppm"], round(clock["best_rtt_us"] or 0), stats["dropped"],
             stats["seq_gaps"], stats["frames_per_s"]))
    return 0 if len(seen) else 1


if __name__ == "__main__":
    sys.exit(main())
