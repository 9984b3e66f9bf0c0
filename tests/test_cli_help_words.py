"""The help of each command uses the command's own words (a new user reads
``rdv X --help`` beside the README)."""

from __future__ import annotations

import re

import pytest

from rdv_tui.cli import main


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse's wrapping aside


@pytest.mark.parametrize(
    ("command", "secret"),
    [("dial", "token"), ("accept", "token"), ("send", "code"), ("receive", "code")],
)
def test_rejoin_names_what_the_command_meets_by(
    capsys: pytest.CaptureFixture[str], command: str, secret: str
) -> None:
    """``rdv send --help`` said ``--rejoin`` rejoins "with the same token": send and
    receive have no token, they meet by the code."""
    assert f"rejoin the lobby with the same {secret} up to N times" in _help(capsys, command)


#: Every ``rdv lab`` subcommand (the parser's own list is checked against it below).
LAB_COMMANDS = ["list", "run", "matrix", "doctor", "shell", "probe", "faststart"]


def test_the_lab_commands_checked_are_all_of_them() -> None:
    """A lab command added later is checked too (``faststart`` was missed in stop 37)."""
    import argparse

    from rdv_tui.cli import build_parser

    parser = build_parser()
    lab = next(
        a.choices["lab"] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    sub = next(a for a in lab._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == sorted(LAB_COMMANDS)


@pytest.mark.parametrize("command", LAB_COMMANDS)
def test_every_lab_command_says_what_it_does(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``rdv lab list --help`` and ``rdv lab probe --help`` showed usage and options
    only: no line said what the command does."""
    with pytest.raises(SystemExit):
        main(["lab", command, "--help"])
    usage, description = capsys.readouterr().out.split("\n\n")[:2]
    assert usage.startswith(f"usage: rdv lab {command}")
    assert not description.startswith(("positional arguments", "options")), description


@pytest.mark.parametrize("command", ["send", "receive"])
def test_a_figure_keeps_its_unit_on_its_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``rdv send --help`` at 80 columns: ``--rejoin``'s "0.5" ended a line, "s
    doubling" began the next. Every width from 60 to 120 columns."""
    for columns in range(60, 121):
        monkeypatch.setenv("COLUMNS", str(columns))
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "0.5 s doubling to 5 s apart" in " ".join(out.split())
        assert not re.search(r"\d\n *(ms|s|B|KiB|MiB|GiB)\b", out), (columns, out)
