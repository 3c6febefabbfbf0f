"""The firmware loop's cost per cycle, under the real MicroPython interpreter, and the
bus time each cycle would need on real hardware.

Part 1 runs the real loop (dexfw) and the real drivers under `.venv/bin/micropython`
over a null HAL: buses that accept every transfer at once and answer nothing, so the
figures are the interpreter's work alone (building packets, mapping, framing), without
the simulated devices' cost. Stages: sampling (encoder drivers), mapping (calibration,
slew limit, coupling, servo frame), servo packet (sync-write built every cycle + the
read-back poll, which the loop runs at most 500 times a second: at 1 kHz half a poll),
read-back (one Feetech answer parsed, put in the receive buffer: the null HAL answers
nothing),
telemetry frame (pack, CRC-32, COBS, write), and a whole cycle (telemetry every 10th
cycle, as configured, and every cycle). With viper and with the plain-Python fallbacks.
NB: the Unix port runs on this host's CPU: a 133 MHz RP2040 is tens of times slower.

Part 2 is the cost model of the real boards (dexlink.targets): per hand and stage the
x86 cost measured here beside the modelled cost on each target (calibrated on an emulated
RP2040, issue 15, and the changes since counted per call and bytecode at the issue's
per-operation costs), what the calibration lacked (the run loop, the USB console's poll,
real machine calls in place of the null HAL's), the cycle with the I2C/SPI waits, the
rate each board holds and the headroom against the hand's configured rate; where the
model guesses, it says so. On the boards with a second core (the Picos: TELEMETRY made on
core 1) the telemetry row is core 0's share, "2 cores' flash" the guessed contention for
the flash cache, and "core 1 load" its frames' share of core 1's time.
It also prints this host's speed probe (sim/board/vtarget.probe_us) beside the iso16
cycle: the virtual board timed as a target scales by their ratio (targets.X86_PROBE_US).

Part 3 computes, from the configured bus speeds (dexlink.hwconfig.bus_time_us), the bus
time one cycle needs on each bus of a real board, against the loop period.

    .venv/bin/python bench/firmware.py            # every shipped hand
    .venv/bin/python bench/firmware.py --cycles 5000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "protocol"))
from dexlink import targets  # noqa: E402
from dexlink.hwconfig import bus_time_us, compile_config, dumps  # noqa: E402

MICROPYTHON = Path(sys.executable).parent / "micropython"
SIM_BOARD = ROOT / "host" / "dexlink" / "sim" / "board"
HANDS = (("iso16", 16), ("iso22", 22), ("tendon16", 16), ("iso16spi", 16))

NULLHAL = '''
import time
from dexfw.bufconsole import BufferConsole as Console
ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
ticks_add = time.ticks_add
sleep_us = time.sleep_us
class Pin:
    OUT = 1
    def __init__(self, n, mode=0):
        pass
    def value(self, v=None):
        return 0
    def __call__(self, v=None):
        return 0
    def on(self):
        pass
    def off(self):
        pass
class I2C:
    def __init__(self, id, scl, sda, freq):
        pass
    def writeto(self, addr, buf, stop=True):
        return 1
    def readfrom_into(self, addr, buf, stop=True):
        pass
    def readfrom_mem_into(self, addr, mem, buf, addrsize=8):
        pass
    def writeto_mem(self, addr, mem, buf, addrsize=8):
        pass
class SPI:
    def __init__(self, id, sck, mosi, miso, baudrate):
        pass
    def write_readinto(self, w, r):
        pass
class UART:
    def __init__(self, id, baudrate, tx, rx):
        pass
    def write(self, buf):
        return len(buf)
    def any(self):
        return 0
    def readinto(self, buf, n=-1):
        return None
'''

SCRIPT = '''
import gc, json, time
import nullhal
from dexfw import mapping, build
from dexfw.loop import Firmware
from dexfw.bufconsole import BufferConsole
from dexproto import frame, cobsbuf
from dexfw.drivers import busbytes, feetech
cfg = json.loads(%r)
N = %d

def framing(viper):
    use = viper and cobsbuf.VIPER
    frame.encode_into = cobsbuf._encode_into_viper if use else cobsbuf.encode_into_py
    frame.copy_into = cobsbuf._copy_into_viper if use else cobsbuf.copy_into_py

def per_call_us(fn):
    """Best of 5 runs of N/5 calls: the machine is shared, the minimum is the cost."""
    fn()
    gc.collect()  # no collection left pending from setup to land inside a timed run
    best = None
    k = max(1, N // 5)
    for rep in range(5):
        t0 = time.ticks_us()
        for i in range(k):
            fn()
        t = time.ticks_diff(time.ticks_us(), t0) / k
        if best is None or t < best:
            best = t
    return best

out = {}
for viper in (True, False):
    mapping.select(viper)
    framing(viper)
    if not viper:
        busbytes.use_plain()
    enc, srv = build.build(nullhal, cfg)
    con = BufferConsole()
    fw = Firmware(nullhal, con, cfg, enc, srv, 0, b"bench")
    jm = fw.jm
    for m in range(jm.nm):
        jm.present[m] = 0
    fw.set_mode(1)
    def sample():
        for e in fw.encoders:
            e.sample(jm.raw, jm.enc_status)
    def mapping_():  # as Firmware.cycle calls them (teleop: map_exo_of sets the targets)
        mapping.map_exo_of(jm, fw.faults.prev_bad)
        mapping.drive_slewed(jm)
    def goals():
        for b in fw.servos:
            b.write_goals(jm.servo_goal)
    def poll():
        for b in fw.servos:
            b.poll(jm.present, jm.servo_status)
    # The read-back: one Feetech answer per bus parsed (the null HAL's UART never
    # answers, so an answer is put in the receive buffer). Other servo buses: 0.
    answers = [(b, feetech.packet(b.ids[0], 0, bytes(feetech.READ_LEN)))
               for b in fw.servos if isinstance(b, feetech.FeetechBus)]
    def readback():
        for b, a in answers:
            b._rxn = cobsbuf.copy_into(a, 0, len(a), b._rx, 0)
            b._awaited[0] = 1
            b._n_awaited = 1
            b._parse(jm.present, jm.servo_status)
    def telemetry():
        fw._send_telemetry()
        con.tx_len = 0
    def cycle():
        fw.cycle(time.ticks_us())
        con.tx_len = 0
    r = {"sample": per_call_us(sample), "map": per_call_us(mapping_),
         "servo": per_call_us(goals) + per_call_us(poll) / fw._poll_every,
         "telemetry": per_call_us(telemetry),
         "readback": per_call_us(readback) if answers else 0.0}
    fw.decimation = 10
    r["cycle_dec10"] = per_call_us(cycle)
    fw.decimation = 1
    r["cycle_dec1"] = per_call_us(cycle)
    # What the cycle costs outside the stages (commands, fault checks, the steps' calls).
    r["overhead"] = r["cycle_dec10"] - (r["sample"] + r["map"] + r["servo"]
                                        + r["telemetry"] / 10)
    out["viper" if viper else "python"] = r
import vtarget
out["probe"] = min(vtarget.probe_us() for _ in range(5))
print(json.dumps(out))
'''


def run_interpreter(cfg, cycles):
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "nullhal.py").write_text(NULLHAL)
        Path(tmp, "bench.py").write_text(SCRIPT % (dumps(cfg), cycles))
        env = dict(os.environ, MICROPYPATH=":".join(
            [tmp, str(ROOT / "protocol"), str(ROOT / "firmware"), str(SIM_BOARD), ".frozen"]))
        proc = subprocess.run([str(MICROPYTHON), str(Path(tmp, "bench.py"))], env=env,
                              capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit("micropython failed:\n" + proc.stdout + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python bench/firmware.py --cycles 5000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=3000,
                    help="calls timed per stage, best of 5 runs (3000)")
    ap.add_argument("--board", default="pico", help="board for the bus-time figures (pico)")
    args = ap.parse_args(argv)

    print("Loop cost per cycle under the MicroPython Unix port (this host's CPU), us")
    stages = ("sample", "map", "servo", "readback", "telemetry", "cycle_dec10", "cycle_dec1",
              "overhead")
    print("%-9s %-7s" % ("hand", "code") + "".join("%13s" % s for s in stages))
    measured = {}
    for hand, _ in HANDS:
        cfg = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand), "virtual")
        res = measured[hand] = run_interpreter(cfg, args.cycles)
        for code in ("viper", "python"):
            print("%-9s %-7s" % (hand, code) + "".join("%13.1f" % res[code][s] for s in stages))
        print("%-9s %-7s" % (hand, "speedup") + "".join(
            "%12.2fx" % (res["python"][s] / res["viper"][s]) if res["viper"][s] > 0
            else "%13s" % "-" for s in stages))
    iso16 = measured["iso16"]
    print("speed probe (sim/board/vtarget.probe_us) %d us beside the iso16 cycle %.1f us: this "
          "host now runs at %.2fx the reference host (probe %d us there)"
          % (iso16["probe"], iso16["viper"]["cycle_dec10"],
             targets.X86_PROBE_US / iso16["probe"], targets.X86_PROBE_US))
    print()
    print_model(measured)
    print()
    print("Bus time per cycle on a real %s, from the configured bus speeds" % args.board)
    for hand, _ in HANDS:
        cfg = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand), args.board)
        period = 1e6 / cfg["loop"]["hz"]
        busy = {b: us for b, us in bus_time_us(cfg).items() if us > 0}
        worst = max(busy.values())
        print("%-9s %4d Hz, period %6.0f us: " % (hand, cfg["loop"]["hz"], period)
              + ", ".join("%s %.0f us" % (b, us) for b, us in busy.items())
              + "  -> busiest bus %.0f%% of the period%s" % (
                  100 * worst / period, "  OVER" if worst > period else ""))
        if hand == "iso22":
            cfg["loop"]["hz"] = 1000
            worst = max(bus_time_us(cfg).values())
            print("%-9s at 1000 Hz the busiest bus would need %.0f%% of the period"
                  % ("", 100 * worst / 1000))


MODEL_STAGES = (("sample", "sample"), ("map", "map"), ("servo", "servo"),
                ("telemetry", "telemetry"), ("telemetry_present", None),
                ("overhead", "overhead"), ("run_loop", None), ("console", None),
                ("machine_calls", None), ("contention", None))


def print_model(measured: dict) -> None:
    """Per hand: each stage's x86 cost here and its modelled cost on every target."""
    names = list(targets.TARGETS)
    print("The cost model on the real boards (dexlink.targets), target us per cycle; "
          "x86: measured above (viper)")
    for hand, _ in HANDS:
        x86 = measured[hand]["viper"]
        costs = [targets.hand_cost(ROOT / "hardware" / "hands" / ("%s.toml" % hand), t)
                 for t in names]
        dec = compile_config(ROOT / "hardware" / "hands" / ("%s.toml" % hand),
                             "virtual")["loop"]["telemetry_decimation"]
        print("%s: asks %d Hz, telemetry every %d cycles" % (hand, costs[0].hz, dec))
        print("  %-16s %9s" % ("stage", "x86") + "".join("%12s" % t for t in names))
        for stage, key in MODEL_STAGES:
            here = x86[key] / (dec if stage == "telemetry" else 1) if key else None
            label = {"telemetry": "telemetry/%d" % dec,
                     "telemetry_present": "  viper present", "run_loop": "run loop",
                     "console": "USB console", "machine_calls": "machine calls",
                     "contention": "2 cores' flash"}.get(stage, stage)
            print("  %-16s %9s" % (label,
                                   "%.1f" % here if here is not None else "-")
                  + "".join("%12.0f" % c.stages[stage] for c in costs))
        print("  %-16s %9s" % ("I2C/SPI waits", "-") + "".join("%12.0f" % c.blocking_us
                                                                for c in costs))
        print("  %-16s %9.1f" % ("cycle", x86["cycle_dec10"]) + "".join(
            "%12.0f" % c.cycle_us for c in costs))
        print("  %-16s %9s" % ("busiest UART", "-") + "".join("%12.0f" % c.uart_us
                                                               for c in costs))
        # The boards with a second core (TELEMETRY made on core 1, dexfw.telemetry): its
        # frame time, and its share of core 1's time at the rate the board runs the hand.
        print("  %-16s %9s" % ("core 1 a frame", "-") + "".join(
            "%12.0f" % c.core1_us if c.core1_us else "%12s" % "-" for c in costs))
        print("  %-16s %9s" % ("core 1 load", "") + "".join(
            "%11.0f%%" % (100 * c.core1_load) if c.core1_us else "%12s" % "-" for c in costs)
              + ("  OVER: frames skipped" if any(c.core1_load > 1 for c in costs) else ""))
        print("  %-16s %9s" % ("holds Hz", "") + "".join("%12d" % c.holds_hz for c in costs))
        print("  %-16s %9s" % ("headroom @%d Hz" % costs[0].hz, "") + "".join(
            "%11.0f%%" % (100 * c.headroom) for c in costs))
        # HOST mode: the host streams TARGETS; the USB console gives its bytes one at a
        # time, and the cycle a frame arrives in reads and handles it (targets.CommandCost).
        host = [targets.host_stream_cost(compile_config(
            ROOT / "hardware" / "hands" / ("%s.toml" % hand), t, calibration=False), t)
            for t in names]
        print("  %-16s %9s" % ("HOST: TARGETS", "") + "".join(
            "%12.0f" % h.cycle_us for h in host)
              + "  (the cycle a %d-byte frame arrives in)" % host[0].frame_bytes)
        print("  %-16s %9s" % ("  mean @%d Hz" % host[0].stream_hz, "") + "".join(
            "%12.0f" % h.mean_cycle_us for h in host))
        print("  %-16s %9s" % ("  holds Hz", "") + "".join("%12d" % h.holds_hz for h in host))
        # This host's x86 us, as the reference host's (the speed probe), x the calibration.
        ref_us = x86["cycle_dec10"] * targets.X86_PROBE_US / measured[hand]["probe"]
        print("  x86 cycle %.1f us = %.1f us on the reference host (speed probe) x %.0f "
              "(emulated RP2040 us per x86 us) = %.0f emulated us; the table's: %.0f"
              % (x86["cycle_dec10"], ref_us, targets.EMULATED_PER_X86,
                 ref_us * targets.EMULATED_PER_X86, costs[0].cpu_us / costs[0].target.factor))
        guessed = sorted({g for c in costs for g in c.guessed})
        if guessed:
            print("  the model guesses: " + "; ".join(guessed))
    print("slowdowns against the emulated RP2040 (optimistic-pessimistic; the model uses "
          "the pessimistic end):")
    for t in targets.TARGETS.values():
        print("  %-12s %4.2f-%4.2f  %s (%s)" % (t.name, t.slowdown[0], t.slowdown[1], t.source,
                                             "measured" if t.measured else "guess"))
    print()


if __name__ == "__main__":
    main()
