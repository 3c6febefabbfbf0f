"""The soak's memory report (bench/soak.py) names what grew, and its trend reads flat when
nothing does: checked on a deliberate leak and on made-up samples, in well under a second."""
from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "soak.py")
soak = importlib.util.module_from_spec(_spec)
sys.modules["bench_soak"] = soak  # its dataclass looks its module up
_spec.loader.exec_module(soak)

kept = []


def leak(n: int) -> None:
    kept.extend(bytearray(1000) for _ in range(n))  # the line the report must name


def sample(t_s: float, host_mb: float, traced_mb: float = 10.0, episode: int = 0):
    return soak.Sample(t_s, host_mb, traced_mb, 13.0, 0, 0, 0, 0, episode)


def test_the_report_names_the_line_that_grew(capsys):
    heap = soak.PythonHeap(frames=4)
    try:
        heap.snapshot(10.0)
        leak(3000)
        heap.snapshot(70.0)
        growth = heap.growth()
    finally:
        heap.stop()
        kept.clear()
    top = growth[0]
    assert top.size_diff >= 3e6 and top.count_diff >= 3000
    assert top.traceback[-1].filename.endswith("test_soak_memory.py")
    assert top.traceback[-1].lineno == leak.__code__.co_firstlineno + 1
    soak.print_python_heap(heap, [sample(0, 100, 12.0, 2), sample(60, 100, 15.0, 3)])
    out = capsys.readouterr().out
    assert "grew most from 10 s to 70 s" in out and "lowest 12.0 -> 15.0 MB" in out
    assert "test_soak_memory.py:%d" % (leak.__code__.co_firstlineno + 1) in out.splitlines()[2]


def test_the_trend_is_flat_when_memory_only_wobbles():
    wobble = [sample(t, 100 + (3 if t % 20 == 0 else 0)) for t in range(0, 600, 5)]
    assert abs(soak.slope_per_hour(wobble, "host_mb")) < 1.0
    growing = [sample(t, 100 + t / 360) for t in range(0, 600, 5)]  # 10 MB an hour
    assert abs(soak.slope_per_hour(growing, "host_mb") - 10) < 1e-6


def test_each_episodes_floor_ignores_a_drained_backlog():
    """A backlog queued late in the run and written: the trend of all samples tilts, the
    trend of each episode's lowest does not; memory kept raises the floors too."""
    spiky = [sample(t, 100 + (80 if 500 <= t < 540 else 0), episode=t // 60)
             for t in range(0, 600, 5)]
    assert soak.slope_per_hour(spiky, "host_mb") > 100
    kept = soak.floors(spiky, "host_mb")
    assert len(kept) == 10 and abs(soak.slope_per_hour(kept, "host_mb")) < 1e-6
    leaking = [sample(t, 100 + t / 360 + (80 if t % 60 == 30 else 0), episode=t // 60)
               for t in range(0, 600, 5)]
    assert abs(soak.slope_per_hour(soak.floors(leaking, "host_mb"), "host_mb") - 10) < 1e-6


def test_untraced_says_so(capsys):
    soak.print_python_heap(soak.PythonHeap(frames=0), [sample(0, 100)])
    assert "not traced" in capsys.readouterr().out
