"""Teleop latency per interface, on the virtual board (the real firmware on MicroPython).

For each simulated device (dexlink.world.interfaces: glove, avp, camera) a producer thread
makes its frames at the device's rate (the operator opening and closing the hand, with the
device's error) and hands them to a `HandInput` queue, stamped when received; the consumer
takes each one, retargets it (dex-retargeting on the generated URDF) and sends HOST-mode
TARGETS over the link. Stages per frame, on the host clock:

    received -> taken (queue) -> retargeted -> sent -> on the servo

"On the servo" is placed as in bench/latency.py: each command carries an id in 0.1-degree
steps of twelve joints (so the first telemetry sample showing it names it), the sample's
board time mapped to the host clock. The command sent is that id pattern, not the
retargeted angles (whose jumps the firmware's slew limit would smear over cycles): the
host stages are the real ones, the link carries a frame of the same size. The device's own
latency (capture -> received) is its published figure, printed beside, not measured.
A live session takes the newest frame and skips older ones (`HandInput.latest`): a slow
stage shows as skipped frames, not as a growing queue. The exoskeleton has no host in the
loop: its latency is one board cycle (printed too).

Goals: retargeting <= 5 ms a frame; received -> servo p99 <= 10 ms beyond the device's own.
Sustained rate: frames a second the host stages could take back to back.

    python bench/teleop.py                       # 5 s per interface
    python bench/teleop.py --seconds 10 --inputs avp --method dexpilot
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import STEP_CDEG, pattern, place_commands, teleop_report  # noqa: E402

from dexlink.hwconfig import HANDS, compile_config  # noqa: E402
from dexlink.inputs.frame import HandInput, InputLimits  # noqa: E402
from dexlink.link import Link  # noqa: E402
from dexlink.retarget import make_retargeter  # noqa: E402
from dexlink.sim import VirtualBoard  # noqa: E402
from dexlink.sim.flashing import flash_virtual  # noqa: E402
from dexlink.world import grasps  # noqa: E402
from dexlink.world.geometry import load_geometry  # noqa: E402
from dexlink.world.interfaces import PROFILES, SimulatedDevice  # noqa: E402
from dexproto import catalog  # noqa: E402

GRASP_PERIOD_S = 2.0  # open -> closed -> open


def produce(device: SimulatedDevice, inp: HandInput, geometry, seconds: float, stop) -> None:
    """The device's frames at its rate, received (stamped) as an adapter would."""
    opened = np.degrees(grasps.posture(geometry, grasps.POWER_OPEN))
    closed = np.degrees(grasps.posture(geometry, grasps.POWER_CLOSED))
    period = 1.0 / device.profile.rate_hz
    t0 = time.monotonic()
    k = 0
    while not stop.is_set() and time.monotonic() - t0 < seconds:
        due = t0 + k * period
        left = due - time.monotonic()
        if left > 0:
            time.sleep(left)
        t = time.monotonic() - t0
        s = 0.5 - 0.5 * np.cos(2 * np.pi * t / GRASP_PERIOD_S)
        frame = device.sample(t, opened + s * (closed - opened), np.eye(4), time.monotonic_ns())
        if frame is not None:
            inp.admit()
            inp.offer(frame)
        k += 1
    inp.stop()


def run_interface(link, name, hand, method, seconds, base):
    geometry = load_geometry(hand)
    device = SimulatedDevice(PROFILES[name], geometry, np.random.default_rng(0))
    retargeter = make_retargeter(hand, method or PROFILES[name].method,
                                 smoothing=PROFILES[name].smoothing)
    inp = HandInput(InputLimits(queue_size=8)).start()
    stop = threading.Event()
    tele = link.subscribe("TELEMETRY", maxsize=200000)
    producer = threading.Thread(target=produce, args=(device, inp, geometry, seconds, stop),
                                daemon=True)
    stamps = []  # (received, taken, retargeted, sent) ns per command
    cpu = []  # the retargeting thread's CPU time per frame (what a quiet machine would take)
    producer.start()
    try:
        while True:
            frame = inp.latest(timeout=1.0)  # a live session takes the newest, skips the rest
            if frame is None:
                if not inp.running:
                    break
                continue
            taken, cpu0 = time.monotonic_ns(), time.thread_time_ns()
            retargeter.retarget(frame)
            done = time.monotonic_ns()
            cpu.append(time.thread_time_ns() - cpu0)
            link.send_targets(pattern(len(stamps) + 1, base))
            stamps.append((frame.t_ns, taken, done, time.monotonic_ns()))
    finally:
        stop.set()
        producer.join()
    time.sleep(0.3)
    on_servo, _ = place_commands(link, tele.drain(), base, len(stamps))
    link.unsubscribe(tele)
    skipped = inp.counters.received - inp.counters.dropped - len(stamps)
    return stamps, on_servo, retargeter.stats, inp.counters, device, skipped, cpu


def ms(values) -> str:
    v = np.asarray(values, dtype=float) / 1e6
    return "%6.2f %6.2f" % (np.median(v), np.percentile(v, 99)) if len(v) else "     -      -"


def report(name, stamps, on_servo, stats, counters, device, skipped, cpu, seconds):
    s = np.array(stamps, dtype=np.int64)
    p = device.profile
    placed = on_servo >= 0
    e2e = on_servo[placed] - s[placed, 0]
    host = s[:, 3] - s[:, 0]
    print("%-7s %3.0f Hz  device %3.0f ms | queue %s | retarget %s | send %s | link->servo %s | "
          "received->servo %s" % (
              name, p.rate_hz, 1e3 * p.latency_s, ms(s[:, 1] - s[:, 0]), ms(s[:, 2] - s[:, 1]),
              ms(s[:, 3] - s[:, 2]), ms(on_servo[placed] - s[placed, 3]), ms(e2e)))
    sustained = 1e9 / max(1.0, float(np.mean(s[:, 3] - s[:, 1])))
    p99 = float(np.percentile(e2e, 99)) / 1e6 if len(e2e) else float("nan")
    print("        frames %d in %.0f s (%.1f/s; %d lost by the device, %d dropped by the input, "
          "%d skipped for a newer one), "
          "%d placed on the servo; retarget mean %.2f ms p99 %.2f ms [goal <= 5] (CPU median, p99 %s); "
          "host stages could sustain %.0f frames/s; received->servo p99 %.2f ms [goal <= 10]; "
          "with the device: ~%.0f ms" % (
              len(s), seconds, len(s) / seconds, device.lost, counters.dropped, skipped,
              int(placed.sum()),
              stats.mean_ms, stats.percentile_ms(99), ms(cpu).strip(), sustained, p99,
              1e3 * p.latency_s + p99))
    return {"retarget_ms": stats.mean_ms, "e2e_p99_ms": p99, "host_median_ms": np.median(host) / 1e6}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: python bench/teleop.py --seconds 5")
    p.add_argument("--seconds", type=float, default=5.0, help="per interface (default 5)")
    p.add_argument("--inputs", default="glove,avp,camera", help="interfaces (default all)")
    p.add_argument("--method", choices=["vector", "position", "dexpilot"],
                   help="retargeting method (default: each device's)")
    p.add_argument("--hand", default=str(HANDS / "iso16.toml"), help="hand to flash")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names = [n for n in args.inputs.split(",") if n]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        p.error("unknown inputs %s (known: %s)" % (", ".join(unknown), ", ".join(PROFILES)))
    cfg = compile_config(args.hand, "virtual")
    base = [min(max(0, j["min_cdeg"]), j["max_cdeg"] - STEP_CDEG) for j in cfg["joints"]]
    results = {}
    with VirtualBoard() as board:
        flash_virtual(board, args.hand)
        with Link(board.port) as link:
            link.set_config(cfg["loop"]["hz"], 1, 500)  # telemetry every cycle: exact cycles
            print("exo (no host in the loop):")
            teleop_report(link, 2.0)
            link.set_mode(catalog.MODE_HOST)
            link.send_targets(pattern(0, base))
            time.sleep(2.0)  # the clock estimate settles
            print("per stage, median and p99 in ms (simulation devices, real retargeting, real "
                  "link and firmware):")
            for name in names:
                run = run_interface(link, name, args.hand, args.method, args.seconds, base)
                results[name] = report(name, *run, args.seconds)
            link.set_mode(catalog.MODE_IDLE)
    ok = all(r["retarget_ms"] <= 5.0 and r["e2e_p99_ms"] <= 10.0 for r in results.values())
    print("goals (retarget <= 5 ms/frame, received->servo p99 <= 10 ms): %s"
          % ("met" if ok else "NOT met on this machine"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
