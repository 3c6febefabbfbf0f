"""Recording under full load: 1 kHz telemetry, four tactile cameras at 320x240 60 fps and
an RGB-D camera at 640x480 30 fps, all simulated, into episodes on disk.

Prints, per stream, frames captured vs written and dropped; host CPU use (with a
baseline: the same cameras and telemetry running while not recording); disk MB/s; and
the time from stopping one episode until the next records, and until the stopped file
is complete on disk.

Telemetry is 22-joint TELEMETRY frames encoded and decoded through dexproto (as the
link would), paced at 1 kHz on the host clock: a recording keeps every loop cycle.
What that costs against the hand files' every-10th-cycle rate (100 Hz) is printed first:
link bytes per second, host CPU and disk for telemetry alone at each rate (the firmware's
side is bench/firmware.py's cycle_dec1 vs cycle_dec10).

    python bench/record.py            # 60 s
    python bench/record.py --seconds 10
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from dexlink.capture import default_fingertips, sim_cameras
from dexlink.record.recorder import Recorder
from dexlink.record.recording import open_session
from dexlink.record.schema import TELEMETRY, image_topic
from dexproto.stream import StreamDecoder, encode, make

N_JOINTS = 22


class TelemetrySource:
    """TELEMETRY at `hz` through encode -> bytes -> StreamDecoder, like the link's reader."""

    def __init__(self, recorder: Recorder, hz: int = 1000):
        self.recorder, self.hz = recorder, hz
        self.sent = 0
        self.decoder = StreamDecoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-telemetry", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        start = time.monotonic_ns()
        period = 1_000_000_000 // self.hz
        while not self._stop.wait(0.002):
            due = (time.monotonic_ns() - start) // period
            while self.sent < due:  # the board's cycles that have happened by now
                c = self.sent
                angle = (c * 3) % 9000
                msg = make("TELEMETRY", cycle=c, board_us=(c * 1000) & 0xFFFFFFFF, cycle_us=300,
                           worst_cycle_us=450, overruns=0, mode=1,
                           items=[(angle, angle, angle - 5, 0)] * N_JOINTS)
                for m in self.decoder.feed(encode(msg, seq=c & 0xFFFF)):
                    self.recorder.on_telemetry(m, start + c * period)
                self.sent += 1


def telemetry_cost(seconds: float, hz: int) -> tuple[float, float, int]:
    """(host CPU % of one core, MB/s on disk, link bytes/s) recording telemetry alone at hz."""
    out = Path(tempfile.mkdtemp(prefix="dexlink-bench-tel-"))
    try:
        rec = Recorder(open_session(out, "bench"), None, {"task": "bench"})
        frame = len(encode(make("TELEMETRY", cycle=0, board_us=0, cycle_us=0, worst_cycle_us=0,
                                overruns=0, mode=1, items=[(0, 0, 0, 0)] * N_JOINTS), seq=0))
        tel = TelemetrySource(rec, hz).start()
        rec.start_episode()
        cpu, wall = measure(seconds, lambda: time.sleep(seconds))
        rec.stop_episode(keep=True)
        rec.wait_finished()
        tel.stop()
        size = sum(p.stat().st_size for p in rec.session.episode_paths())
        return 100 * cpu / wall, size / 1e6 / wall, frame * hz
    finally:
        shutil.rmtree(out)


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def measure(seconds: float, what):
    """(CPU seconds, wall seconds) while what() runs."""
    c0, w0 = cpu_s(), time.monotonic()
    what()
    return cpu_s() - c0, time.monotonic() - w0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: python bench/record.py --seconds 10")
    p.add_argument("--seconds", type=float, default=60.0, help="recording time (default 60)")
    p.add_argument("--episodes", type=int, default=2, help="episodes in that time (default 2)")
    p.add_argument("--keep", type=Path, help="keep the session here instead of a temp dir")
    p.add_argument("--telemetry-seconds", type=float, default=5.0,
                   help="seconds per rate for the telemetry-alone figures (default 5; 0: skip)")
    args = p.parse_args(argv)

    if args.telemetry_seconds > 0:
        print("telemetry alone, %d joints (the recorder's thread, JSON encoding, MCAP):" % N_JOINTS)
        for label, hz in (("every 10th cycle", 100), ("every cycle", 1000)):
            cpu, mb_s, link_b = telemetry_cost(args.telemetry_seconds, hz)
            print("  %-17s %5d Hz: link %6.1f kB/s, host CPU %4.1f%% of one core, disk %.2f MB/s"
                  " (%.0f MB/h)" % (label, hz, link_b / 1e3, cpu, mb_s, mb_s * 3600))
        print()

    out = args.keep or Path(tempfile.mkdtemp(prefix="dexlink-bench-"))
    session = open_session(out, "bench")
    rec = Recorder(session, None, {"task": "bench"})
    rec.attach_cameras(sim_cameras(rec.joints, default_fingertips(N_JOINTS, 4)))
    rec.start_cameras()
    tel = TelemetrySource(rec).start()
    rec.cameras.wait_running()

    baseline_s = min(5.0, max(1.0, args.seconds / 10))
    base_cpu, base_wall = measure(baseline_s, lambda: time.sleep(baseline_s))

    per_episode = args.seconds / args.episodes
    captured0 = {c.name: c.stats.captured for c in rec.cameras}
    missed0 = {c.name: c.stats.missed for c in rec.cameras}
    between0 = dict(rec.between_episodes)
    tel0 = tel.sent
    writers, switches = [], []

    def run():
        for n in range(args.episodes):
            t_stop = time.monotonic()
            if n:
                rec.stop_episode(keep=True)
            rec.start_episode()
            if n:
                switches.append(time.monotonic() - t_stop)
            writers.append(rec.current)
            time.sleep(per_episode)
        t = time.monotonic()
        at_stop.update({c.name: (c.stats.captured, c.stats.missed) for c in rec.cameras},
                       telemetry=(tel.sent, 0))
        between.update(rec.between_episodes)
        rec.stop_episode(keep=True)
        rec.wait_finished()
        finishes.append(time.monotonic() - t)

    finishes: list[float] = []
    at_stop: dict[str, tuple[int, int]] = {}
    between: dict[str, int] = {}
    rec_cpu, rec_wall = measure(args.seconds, run)
    captured = {c.name: at_stop[c.name][0] - captured0[c.name] for c in rec.cameras}
    missed = {c.name: at_stop[c.name][1] - missed0[c.name] for c in rec.cameras}
    tel_sent = at_stop["telemetry"][0] - tel0
    tel.stop()
    rec.cameras.stop()

    ncpu = os.cpu_count() or 1
    size = sum(p.stat().st_size for p in session.episode_paths())
    print("recording %.1f s in %d episodes, %d-core host, session %s"
          % (rec_wall, args.episodes, ncpu, out))
    print("baseline (%.0f s, not recording): frames missed per camera %s"
          % (baseline_s, ", ".join("%s %d" % (n, m) for n, m in missed0.items())))
    print("%-22s %10s %10s %8s %10s" % ("stream", "captured", "written", "dropped",
                                         "unrecorded"))

    def row(name, captured_n, topic, key, missed=0):
        written = sum(w.counts[topic].written for w in writers)
        dropped = sum(w.counts[topic].dropped for w in writers) + missed
        print("%-22s %10d %10d %8d %10d" % (name, captured_n, written, dropped,
                                            between.get(key, 0) - between0.get(key, 0)))

    row("telemetry (1 kHz)", tel_sent, TELEMETRY, "telemetry")
    for c in rec.cameras:
        row("%s %dx%d@%g" % (c.name, c.width, c.height, c.fps), captured[c.name],
            image_topic(c.name, c.kind), c.name, missed[c.name])
    print("dropped: frames due that never came (camera lag) + refused by a full queue; "
          "unrecorded: arrived between episodes (during a stop -> start)")
    print("host CPU: %.0f%% of one core while recording (%.0f%% of the machine); "
          "baseline without recording %.0f%%"
          % (100 * rec_cpu / rec_wall, 100 * rec_cpu / rec_wall / ncpu,
             100 * base_cpu / base_wall))
    print("disk: %.1f MB in %.1f s = %.2f MB/s" % (size / 1e6, rec_wall, size / 1e6 / rec_wall))
    if switches:
        print("stop -> next episode recording: %s ms" % ", ".join("%.1f" % (s * 1e3) for s in switches))
    print(
        "stop -> last file complete on disk (queue drained, summary, fsync, index): %.0f ms"
        % (finishes[0] * 1e3)
    )
    if rec.errors:
        print("errors: " + "; ".join(rec.errors))
    if not args.keep:
        shutil.rmtree(out)
    return 0 if not rec.errors else 1


if __name__ == "__main__":
    sys.exit(main())
