"""The CLI is a thin layer: commands call the library and never each other, the library
never calls the CLI, and cli.main alone turns errors into exit statuses."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dexlink
from dexlink import cli
from dexlink.errors import EXIT_INTERRUPTED, EXIT_USAGE, UserError
from dexlink.link import LinkDown

PACKAGE = Path(dexlink.__file__).parent
CLI_LAYER = ("dexlink.cli", "dexlink.cli_support", "dexlink.commands", "dexlink.ui",
             "dexlink.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every dexlink module a file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update("%s.%s" % (node.module, a.name) for a in node.names)
    return {n for n in names if n.startswith("dexlink")}


def in_layer(name: str, layer) -> bool:
    return any(name == p or name.startswith(p + ".") for p in layer)


def test_commands_do_not_import_each_other():
    commands = sorted((PACKAGE / "commands").glob("*.py"))
    assert len(commands) > 10
    for path in commands:
        others = {n for n in imported(path) if n.startswith("dexlink.commands")}
        assert not others, "%s imports %s: share it through the library or cli_support" % (
            path.name, ", ".join(sorted(others)))


def test_the_library_never_imports_the_cli():
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if in_layer(name, CLI_LAYER) or "/sim/board/" in path.as_posix():
            continue  # the CLI itself; the simulated rig runs inside MicroPython
        checked += 1
        cli_imports = {n for n in imported(path) if in_layer(n, CLI_LAYER)}
        assert not cli_imports, "%s (library) imports %s" % (name, ", ".join(sorted(cli_imports)))
    assert checked > 20


def test_exit_statuses_come_from_cli_main(monkeypatch, capsys, tmp_path):
    from dexlink.commands import inspect as inspect_cmd

    # a wrong option value argparse cannot check: status 2, as argparse's own refusals
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--fps", "0"]) \
        == EXIT_USAGE
    assert capsys.readouterr().err == "dexlink export: --fps must be positive\n"

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(inspect_cmd, "inspect_command", interrupted)
    assert cli.main(["inspect", "x"]) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "dexlink inspect: interrupted\n"

    def board_gone(args):
        raise LinkDown("the link to /dev/ttyACM0 is down")

    monkeypatch.setattr(inspect_cmd, "inspect_command", board_gone)
    assert cli.main(["inspect", "x"]) == 1
    assert capsys.readouterr().err == "dexlink inspect: the link to /dev/ttyACM0 is down\n"


def test_record_options_are_checked_where_they_are_made(tmp_path):
    from dexlink.record.recording import RecordError, RecordOptions, open_session

    with pytest.raises(RecordError, match="at least one episode"):
        RecordOptions(task="t", episodes=0)
    with pytest.raises(RecordError, match="positive duration"):
        RecordOptions(task="t", duration_s=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(RecordError, match="cannot record into %s" % (blocker / "s")):
        open_session(blocker / "s", "t")
    assert issubclass(RecordError, UserError)


def test_board_options_name_a_missing_hand(tmp_path):
    from dexlink.board import BoardError, BoardOptions, default_hand, hand_file, hand_names

    assert hand_file(BoardOptions()) == default_hand()  # a virtual board: the default hand
    assert hand_file(BoardOptions(port="/dev/ttyACM0")) is None  # a real one: none unless named
    with pytest.raises(BoardError, match="nope.toml: no such hand file"):
        hand_file(BoardOptions(port="/dev/ttyACM0", hand=tmp_path / "nope.toml"))
    joints, motors = hand_names(default_hand())
    assert len(joints) == 16 and joints[0] == "thumb_cmc_abd" and motors
