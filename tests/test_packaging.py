"""The wheel works away from the checkout: the firmware, the hardware descriptions and the
simulated rig ship inside it as package data (found with importlib.resources), and the
installed `dexlink` records, flashes and simulates from a directory that is not the
checkout, with the checkout on no import path.

The wheel is built from a copy of the sources (the files an sdist carries), with the
project's own setuptools and no index: nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from dexlink.record.reader import read_episode
from dexlink.record.session import Session

# Building and installing the wheel takes seconds, the board runs tens of seconds.
pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "host", "protocol",
           "firmware", "hardware")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist",
                                "*.calibration.toml")


def _run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copyfile(path, src / name)
    # A calibration someone made in their checkout is theirs, not part of the package.
    (src / "hardware" / "hands" / "iso16.calibration.toml").write_text("[joints]\n")
    out = base / "dist"
    r = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-index", "--no-deps",
              "--no-build-isolation", "--wheel-dir", out, src], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    [whl] = out.glob("dexlink-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """The wheel installed into a fresh directory; how to run it from outside the checkout."""
    base = tmp_path_factory.mktemp("installed")
    target = base / "site"
    r = _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
              "--target", target, wheel], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    # The installed package first; the dependencies from this environment's site-packages.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env["PYTHONPATH"] = str(target)
    # `python -S`: no .pth files, so not even an editable install's finder can reach the
    # checkout; the dependencies come from this environment's site-packages by path.
    deps = sysconfig.get_paths()["purelib"]
    isolated = dict(env, PYTHONPATH=os.pathsep.join([str(target), deps]))
    return {"site": target, "cwd": elsewhere, "env": env, "isolated": isolated,
            "script": target / "bin" / "dexlink"}


def dexlink(installed, *args, timeout=180):
    """The installed `dexlink` script, run from outside the checkout."""
    return _run([installed["script"], *args], cwd=installed["cwd"], env=installed["env"],
                timeout=timeout)


def python_m_dexlink(installed, *args, timeout=180):
    """`python -S -m dexlink`: the installed package, with no .pth file processed."""
    return _run([sys.executable, "-S", "-m", "dexlink", *args], cwd=installed["cwd"],
                env=installed["isolated"], timeout=timeout)


def test_the_wheel_carries_firmware_hardware_and_the_simulated_rig(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    firmware = [p.relative_to(ROOT / "firmware").as_posix()
                for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts]
    hardware = [p.relative_to(ROOT / "hardware").as_posix()
                for p in (ROOT / "hardware").rglob("*.toml")
                if not p.name.endswith(".calibration.toml")]
    assert {"main.py", "dexfw/config.py"} <= set(firmware) and "hands/iso16.toml" in hardware
    expected = {"dexlink/_assets/firmware/" + f for f in firmware}
    expected |= {"dexlink/_assets/hardware/" + f for f in hardware}
    expected |= {"dexlink/sim/board/" + p.name
                 for p in (ROOT / "host" / "dexlink" / "sim" / "board").glob("*.py")}
    expected |= {"dexproto/" + p.name for p in (ROOT / "protocol" / "dexproto").glob("*.py")}
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".calibration.toml")]


def test_the_installed_package_reads_nothing_from_the_checkout(installed):
    probe = textwrap.dedent("""
        import json, sys
        from dexlink import cli, flash, hwconfig, resources
        from dexlink.sim import VirtualBoard
        cli.build_parser()  # imports every command
        cfg = hwconfig.compile_config("iso16", "pico")
        dirs = [resources.firmware_dir(), resources.hands_dir(), resources.sim_board_dir(),
                resources.protocol_dir()]
        files = {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}
        print(json.dumps({"files": sorted(files), "path": sys.path, "dirs": [str(d) for d in dirs],
                          "joints": len(cfg["joints"])}))
        """)
    site = str(installed["site"].resolve())
    sources = [ROOT / d for d in SOURCES[4:]]  # the checkout's code (its .venv/ holds the deps)

    def in_checkout(path: str) -> bool:
        p = Path(path).resolve() if path else None
        return p is not None and (p == ROOT or any(p.is_relative_to(d) for d in sources))

    for how in ("env", "isolated"):
        argv = [sys.executable] + (["-S"] if how == "isolated" else []) + ["-c", probe]
        r = _run(argv, cwd=installed["cwd"], env=installed[how], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        seen = json.loads(r.stdout)
        assert seen["joints"] == 16
        assert all(d.startswith(site) for d in seen["dirs"]), seen["dirs"]
        ours = [f for f in seen["files"] if "/dexlink/" in f or "/dexproto/" in f]
        assert ours and all(f.startswith(site) for f in ours), ours
        assert not [f for f in seen["files"] if in_checkout(f)]
        assert not [p for p in seen["path"] if in_checkout(p)]


@pytest.mark.vboard
def test_record_sim_from_the_installed_wheel_outside_the_checkout(installed):
    out = installed["cwd"] / "session"
    r = dexlink(installed, "record", "--sim", "--task", "pick the cube", "--duration", "1.5",
                "--out", "session", "--no-keys")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kept episode_0000.mcap" in r.stdout
    [entry] = Session(out).episodes
    episode = read_episode(out / entry["file"])
    assert episode.complete and episode.info["task"] == "pick the cube"
    assert episode.info["board"] == "virtual" and int(episode.info["n_joints"]) == 16
    assert len(episode.telemetry()["t_ns"]) > 20


@pytest.mark.vboard
def test_flash_sim_by_hand_name_and_sim_from_the_installed_wheel(installed):
    fs = installed["cwd"] / "vb"
    r = python_m_dexlink(installed, "flash", "--sim", "--hand", "iso22", "--fs", "vb", "--exit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified" in r.stdout and "22 joints" in r.stdout
    assert (fs / "main.py").read_text() == (ROOT / "firmware" / "main.py").read_text()
    assert (fs / "dexlink.json").exists() and (fs / "dexfw").is_dir()
    assert not (fs / "dexproto" / "stream.py").exists()  # host only
    r = dexlink(installed, "sim", "--fs", "vb", "--seconds", "1")  # boots what was flashed
    assert r.returncode == 0, r.stdout + r.stderr
    assert "virtual board running on" in r.stdout
    r = dexlink(installed, "flash", "--sim", "--hand", "iso99", "--exit")
    assert r.returncode == 1 and "iso99: no such hand" in r.stderr and "iso16" in r.stderr


@pytest.mark.vboard
def test_demo_from_the_installed_wheel(installed):
    r = dexlink(installed, "demo", "--out", "demo", "--duration", "1", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "exported 2 episodes" in r.stdout
    [session] = (installed["cwd"] / "demo").glob("session-*")
    assert len(Session(session).episodes) == 2
