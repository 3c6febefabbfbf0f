"""The installed tools exist and the CLI answers."""
import subprocess
import sys

import pytest

import dexlink
from conftest import MICROPYTHON, MPY_CROSS, run_micropython

pytestmark = pytest.mark.micropython


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "dexlink.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert dexlink.__version__ in out
    out = subprocess.run([sys.executable, "-m", "dexlink.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "usage: dexlink" in out


def test_micropython_runs_the_protocol_package():
    assert MICROPYTHON.exists() and MPY_CROSS.exists()
    out = run_micropython(
        "import sys, dexproto\nprint(sys.implementation.name, dexproto.__version__)"
    )
    assert out.stdout.decode().split() == ["micropython", dexproto_version()]


def dexproto_version():
    import dexproto

    return dexproto.__version__
