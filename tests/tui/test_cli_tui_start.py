"""``rdv tui`` refuses bad input at start, in words, as the headless commands do: a
server URL that no rdv command could use, a replay file that is not there. A bad URL
the user did not type (``RDV_SERVER``, the config file) is named with its source."""

from __future__ import annotations

from pathlib import Path

import pytest

import rdv_tui.app
import rdv_tui.cli.checks
from rdv_tui.cli import build_parser, main
from rdv_tui.cli.commands import tui


@pytest.fixture(autouse=True)
def no_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config, and no app: a start that got past the checks returns 0 (as if
    in a terminal)."""
    monkeypatch.setenv("RDV_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("RDV_SERVER", raising=False)
    monkeypatch.setattr(rdv_tui.app, "run_app", lambda app: 0)
    monkeypatch.setattr(rdv_tui.cli.checks, "no_terminal", lambda command: None)


def run(*argv: str) -> int:
    return tui.run(build_parser().parse_args(["tui", *argv]))


def test_a_server_url_no_rdv_command_takes_is_refused_before_the_app_opens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--server ftp://x`` opened the app, whose banner told the other machine to run
    ``rdv receive --server ftp://x``, which refuses it."""
    assert run("--server", "ftp://x") == 2
    assert "rdv tui: rdv server URL must be http:// or https://, got 'ftp://x'" in (
        capsys.readouterr().err
    )


def test_a_bad_server_from_the_environment_is_named_with_its_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDV_SERVER", "http://alice@127.0.0.1:9")
    assert run() == 2
    assert "rdv tui: RDV_SERVER: rdv server URL cannot have user@" in capsys.readouterr().err


def test_a_good_server_still_opens_the_app() -> None:
    assert run("--server", "http://127.0.0.1:9/rdv") == 0


def test_a_missing_replay_file_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It read ``[Errno 2] No such file or directory: '/tmp/.../race.jsonl'``."""
    missing = tmp_path / "race.jsonl"
    assert run("--replay", str(missing)) == 2
    err = capsys.readouterr().err
    assert f"rdv tui: cannot replay {missing}: No such file or directory\n" == err


def test_send_and_receive_name_a_bad_url_from_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rdv send note.txt`` with ``server = "ftp://x"`` in config.toml said only
    ``rdv server URL must be http:// or https://, got 'ftp://x'``."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('server = "ftp://x"\n')
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    note = tmp_path / "note.txt"
    note.write_text("hi")
    says = f"{cfg}: rdv server URL must be http:// or https://, got 'ftp://x'"
    assert main(["send", str(note)]) == 2
    assert f"rdv send: {says}" in capsys.readouterr().err
    assert main(["receive", "7-tulip-orbit", "--dir", str(tmp_path)]) == 2
    assert f"rdv receive: {says}" in capsys.readouterr().err


def test_doctor_names_a_bad_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDV_SERVER", "ftp://x")
    assert main(["doctor"]) == 2
    assert "rdv doctor: RDV_SERVER: rdv server URL must be http:// or https://" in (
        capsys.readouterr().err
    )


def test_dial_and_accept_name_a_bad_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`RDV_SERVER=ftp://x rdv dial TOKEN` said only "rdv server URL must be ...": a URL
    the user never typed on that command line."""
    monkeypatch.setenv("RDV_SERVER", "ftp://x")
    for command in ("dial", "accept"):
        assert main([command, "a-token"]) == 2
        assert f"rdv {command}: RDV_SERVER: rdv server URL must be http:// or https://" in (
            capsys.readouterr().err
        )


def test_without_a_terminal_the_app_says_so_and_does_not_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rdv < /dev/null`` (a script, cron) drew the app's escape sequences into stderr
    and waited for keys forever."""
    monkeypatch.undo()  # the real check, with pytest's stdin: not a terminal
    monkeypatch.setattr(rdv_tui.app, "run_app", lambda app: 0)
    monkeypatch.setenv("RDV_CONFIG", "/nonexistent/rdv-config.toml")
    for command in ("tui", "demo"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"rdv {command}: the app needs a terminal, and stdin "), err
        assert "rdv --help" in err
