"""The help of each command uses the command's own words (a new user reads
``rdv X --help`` beside the README)."""

from __future__ import annotations

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


@pytest.mark.parametrize("command", ["list", "run", "matrix", "doctor", "shell", "probe"])
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
