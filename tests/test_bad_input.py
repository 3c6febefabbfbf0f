"""Bad input from users: every command, given a missing, empty, truncated or wrong-format
file (hand TOML, board, calibration, MCAP episode, session directory, output path), exits
non-zero with a short message that names the file, and never prints a traceback.

Each case runs the real `dexlink` entry point (or `python -m dexlink.hwconfig`) as a
subprocess on files made here. Board ports are ones that cannot exist, so a command that
checked its files too late fails on the port instead, and the message check catches it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dexlink.record.episode import EpisodeWriter
from dexproto.stream import make

pytestmark = pytest.mark.vboard

ROOT = Path(__file__).resolve().parents[1]
DEXLINK = Path(sys.executable).parent / "dexlink"
HAND = ROOT / "hardware" / "hands" / "iso16.toml"
NO_PORT = "/nonexistent/ttyACM9"


def write_episode(path: Path, samples: int = 400) -> Path:
    """A real episode written by the recorder's own writer: enough telemetry for a few chunks."""
    w = EpisodeWriter(path, {"hand": "test"}, chunk_size=4096)
    for k in range(samples):
        msg = make("TELEMETRY", cycle=k, board_us=k * 10000, cycle_us=100, worst_cycle_us=200,
                   overruns=0, mode=1, items=[(k, k, k, 0)] * 4)
        w.add_telemetry(msg, 10_000_000_000 + k * 10_000_000)
    return w.finish({"outcome": "ok"})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every bad (and a few good) inputs, by name; see the cases below."""
    d = tmp_path_factory.mktemp("bad")
    f = {}

    def put(name, data):
        f[name] = d / name
        (f[name].write_bytes if isinstance(data, bytes) else f[name].write_text)(data)

    hand_text = HAND.read_text()
    f["missing.toml"] = d / "missing.toml"
    put("empty.toml", "")
    put("truncated.toml", hand_text[: len(hand_text) // 3])
    put("binary.toml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    put("json.toml", json.dumps({"joints": [{"name": "a"}]}))
    put("wrongtypes.toml", 'name = "h"\njoints = "thumb, index"\n')
    f["dir.toml"] = d / "dir.toml"
    f["dir.toml"].mkdir()
    put("board_truncated.toml", (ROOT / "hardware" / "boards" / "pico.toml").read_text()[:60])

    # A good hand next to a broken calibration file, one per kind of damage.
    for kind, text in (("truncated", '[joints."thumb_cmc_abd"]\nindex = 0\nzero_turn16 = 12\n'
                                     'range_deg = [-10.0, '),
                       ("binary", b"\xff\xfe\x00garbage"),
                       ("wrongformat", "joints = [1, 2, 3]\n"),
                       ("wrongfield", '[joints."thumb_cmc_abd"]\nzero_turn16 = "12"\n'),
                       ("wrongjoint", '[joints."pinky_tip"]\nzero_turn16 = 12\n')):
        hd = d / ("cal_" + kind)
        hd.mkdir()
        f["cal_" + kind] = hd / "iso16.toml"  # the hand; the command finds the calibration
        f["cal_" + kind].write_text(hand_text)
        cal = hd / "iso16.calibration.toml"
        (cal.write_bytes if isinstance(text, bytes) else cal.write_text)(text)

    f["good_dir"] = d / "good"
    f["good_dir"].mkdir()
    f["good.mcap"] = write_episode(f["good_dir"] / "episode_0000.mcap")
    raw = f["good.mcap"].read_bytes()
    put("half.mcap", raw[: len(raw) // 2])  # cut short, but recoverable
    f["missing.mcap"] = d / "missing.mcap"
    put("empty.mcap", b"")
    put("truncated.mcap", raw[:20])  # cut inside the header: nothing survives
    put("text.mcap", "this is not an episode\n")
    f["dir.mcap"] = d / "dir.mcap"
    f["dir.mcap"].mkdir()

    # Session directories.
    f["missing_session"] = d / "missing_session"
    f["empty_session"] = d / "empty_session"
    f["empty_session"].mkdir()
    for name, index in (("garbage_session", "{not json"), ("list_session", "[1, 2]"),
                        ("emptyindex_session", ""),
                        ("badentries_session", '{"format": 1, "episodes": [3, "x"]}'),
                        ("dangling_session",
                         '{"format": 1, "episodes": [{"file": "episode_0007.mcap"}]}')):
        f[name] = d / name
        f[name].mkdir()
        (f[name] / "session.json").write_text(index)

    put("a_file", "I am a file, not a directory\n")
    return f


# (id, argv with {name} for a file above, the file the message must name)
CASES = [
    # hand TOML, through each command that reads one
    *[("hwconfig-%s" % h, ["-m", "dexlink.hwconfig", "{%s}" % h, "virtual"], h)
      for h in ("missing.toml", "empty.toml", "truncated.toml", "binary.toml", "json.toml",
                "wrongtypes.toml", "dir.toml")],
    *[("flash-%s" % h, ["flash", "--port", NO_PORT, "--board", "pico", "--hand", "{%s}" % h], h)
      for h in ("missing.toml", "empty.toml", "truncated.toml", "binary.toml", "dir.toml")],
    *[("flash-sim-%s" % h, ["flash", "--sim", "--exit", "--hand", "{%s}" % h], h)
      for h in ("empty.toml", "binary.toml")],
    *[("sim-%s" % h, ["sim", "--seconds", "0", "--hand", "{%s}" % h], h)
      for h in ("missing.toml", "empty.toml", "binary.toml", "dir.toml")],
    *[("%s-%s" % (cmd, h), [cmd, "--port", NO_PORT, "--hand", "{%s}" % h, *extra], h)
      for cmd, extra in (("session", ["--duration", "0"]), ("calibrate", ["--yes"]),
                         ("record", ["--task", "t", "--out", "{a_file}_never"]))
      for h in ("missing.toml", "empty.toml", "truncated.toml", "binary.toml", "wrongtypes.toml",
                "dir.toml")],
    *[("%s-sim-%s" % (cmd, h), [cmd, "--sim", "--hand", "{%s}" % h, *extra], h)
      for cmd, extra in (("session", ["--duration", "0"]), ("calibrate", ["--yes"]),
                         ("replay", ["{good.mcap}"]), ("record", ["--task", "t"]))
      for h in ("empty.toml", "binary.toml")],
    *[("demo-%s" % h, ["demo", "--out", "{a_file}_demo", "--hand", "{%s}" % h], h)
      for h in ("missing.toml", "empty.toml")],
    # board names and board files
    ("flash-board-name", ["flash", "--port", NO_PORT, "--hand", str(HAND), "--board", "nosuch"],
     "nosuch"),
    ("flash-board-empty", ["flash", "--port", NO_PORT, "--hand", str(HAND), "--board",
                           "{empty.toml}"], "empty.toml"),
    ("flash-sim-board-name", ["flash", "--sim", "--exit", "--hand", str(HAND), "--board",
                              "nosuch"], "nosuch"),
    ("hwconfig-board-name", ["-m", "dexlink.hwconfig", str(HAND), "nosuch"], "nosuch"),
    ("hwconfig-board-truncated", ["-m", "dexlink.hwconfig", str(HAND), "{board_truncated.toml}"],
     "board_truncated.toml"),
    ("hwconfig-board-binary", ["-m", "dexlink.hwconfig", str(HAND), "{binary.toml}"],
     "binary.toml"),
    # calibration file next to the hand
    *[("calibrate-cal-%s" % k, ["calibrate", "--port", NO_PORT, "--yes", "--hand",
                                "{cal_%s}" % k], "iso16.calibration.toml")
      for k in ("truncated", "binary", "wrongformat", "wrongfield", "wrongjoint")],
    *[("%s-cal-%s" % (name, k), [a.replace("HAND", "{cal_%s}" % k) for a in argv],
       "iso16.calibration.toml")
      for name, argv in (("hwconfig", ["-m", "dexlink.hwconfig", "HAND", "virtual"]),
                         ("sim", ["sim", "--seconds", "0", "--hand", "HAND"]))
      for k in ("truncated", "wrongfield")],
    # MCAP episodes
    *[("%s-%s" % (cmd[0], e), [*cmd, "{%s}" % e], e)
      for cmd in (["inspect"], ["recover"], ["replay", "--port", NO_PORT])
      for e in ("missing.mcap", "empty.mcap", "truncated.mcap", "text.mcap", "dir.mcap")],
    ("inspect-plot-text", ["inspect", "--plot", "{text.mcap}"], "text.mcap"),
    # session directories
    *[("%s-%s" % (cmd, s), [cmd, "{%s}" % s, *extra], s)
      for cmd, extra in (("inspect", []), ("export", ["--out", "{a_file}_export"]))
      for s in ("missing_session", "empty_session", "a_file")],
    *[("%s-%s" % (cmd, s), [cmd, "{%s}" % s, *extra], "session.json")
      for cmd, extra in (("inspect", []), ("export", ["--out", "{a_file}_export"]))
      for s in ("garbage_session", "list_session", "emptyindex_session", "badentries_session")],
    *[("record-%s" % s, ["record", "--port", NO_PORT, "--task", "t", "--out", "{%s}" % s],
       "session.json")
      for s in ("garbage_session", "list_session", "emptyindex_session", "badentries_session")],
    ("inspect-dangling", ["inspect", "{dangling_session}"], "episode_0007.mcap"),
    # (export lists what it skipped, with why, on stdout; the error names the session)
    ("export-dangling", ["export", "{dangling_session}", "--out", "{a_file}_x"],
     "dangling_session"),
    # output paths that are files (or inside one)
    ("record-out-file", ["record", "--port", NO_PORT, "--task", "t", "--out", "{a_file}"],
     "a_file"),
    ("record-sim-out-file", ["record", "--sim", "--task", "t", "--out", "{a_file}"], "a_file"),
    ("export-out-file", ["export", "{good_dir}", "--out", "{a_file}"], "a_file"),
    ("demo-out-file", ["demo", "--out", "{a_file}"], "a_file"),
    ("inspect-plot-dir-file", ["inspect", "{good.mcap}", "--plot", "--plot-dir", "{a_file}"],
     "a_file"),
    ("recover-out-in-file", ["recover", "{half.mcap}", "--out", "{a_file}/x.mcap"],
     "a_file"),
    ("hwconfig-out-dir", ["-m", "dexlink.hwconfig", str(HAND), "virtual", "-o", "{dir.toml}"],
     "dir.toml"),
    ("hwconfig-out-in-file", ["-m", "dexlink.hwconfig", str(HAND), "virtual", "-o",
                              "{a_file}/x.json"], "a_file"),
    ("doctor-data-dir-file", ["doctor", "--data-dir", "{a_file}"], "a_file"),
    ("sim-fs-file", ["sim", "--seconds", "0", "--fs", "{a_file}"], "a_file"),
    ("flash-sim-fs-file", ["flash", "--sim", "--exit", "--hand", str(HAND), "--fs", "{a_file}"],
     "a_file"),
    # a file where a serial port is expected
    ("session-port-file", ["session", "--port", "{empty.toml}", "--duration", "0"], "empty.toml"),
    ("ports-file", ["ports", "--timeout", "0.2", "{empty.toml}"], "empty.toml"),
]


REPORTS = ("ports", "doctor")


def expand(arg: str, files: dict[str, Path]) -> str:
    """'{name}suffix' -> the path of that file plus the suffix."""
    if not arg.startswith("{"):
        return arg
    name, _, suffix = arg[1:].partition("}")
    return str(files[name]) + suffix


@pytest.mark.parametrize("argv,named", [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_bad_input_is_one_clear_line(files, argv, named):
    argv = [expand(a, files) for a in argv]
    cmd = [sys.executable, *argv] if argv[0] == "-m" else [str(DEXLINK), *argv]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       cwd=files["a_file"].parent)
    out = r.stdout + r.stderr
    # Commands whose output is a report of checks say what failed in the report.
    message = r.stdout if argv[0] in REPORTS else r.stderr
    shown = "exit %d\n--- stdout\n%s--- stderr\n%s" % (r.returncode, r.stdout, r.stderr)
    assert r.returncode != 0, shown
    assert "Traceback" not in out, shown
    assert named in message, "the message does not name %s\n%s" % (named, shown)
    assert len(r.stderr.strip().splitlines()) <= 3, shown


def run_dexlink(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DEXLINK), *argv], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("where", ["session", "parent", "foreign"])
def test_export_never_replaces_what_is_not_a_dataset(files, tmp_path, where):
    """`--out` is replaced when it holds an earlier export; a mistyped --out pointing at the
    session, a directory above it, or someone's files is refused and nothing is deleted."""
    session = tmp_path / "sessions" / "cube"
    session.mkdir(parents=True)
    (session / "episode_0000.mcap").write_bytes(files["good.mcap"].read_bytes())
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("years of work")
    out = {"session": session, "parent": session.parent, "foreign": foreign}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = run_dexlink("export", str(session), "--out", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(out) in r.stderr and "choose another --out" in r.stderr, r.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_earlier_export_is_replaced(files, tmp_path):
    out = tmp_path / "dataset"
    for _ in range(2):  # the second run replaces the first
        r = run_dexlink("export", str(files["good_dir"]), "--out", str(out), "--format", "zarr")
        assert r.returncode == 0, r.stderr
    assert (out / ".zgroup").exists()


def test_a_bug_still_shows_its_traceback(monkeypatch, capsys):
    """Only user errors are turned into one line: anything else is a bug and keeps its trace."""
    from dexlink import cli
    from dexlink.commands import inspect as inspect_cmd
    from dexlink.errors import UserError

    def broken(args):
        raise KeyError("internal")

    monkeypatch.setattr(inspect_cmd, "inspect_command", broken)
    with pytest.raises(KeyError):
        cli.main(["inspect", "x"])

    def user_mistake(args):
        raise UserError("x.mcap: not an episode")

    monkeypatch.setattr(inspect_cmd, "inspect_command", user_mistake)
    assert cli.main(["inspect", "x"]) == 1
    assert capsys.readouterr().err == "dexlink inspect: x.mcap: not an episode\n"
