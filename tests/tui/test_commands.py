"""``rdv tui`` and ``rdv demo`` argument handling (the app itself is tested with Pilot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_tui.cli import build_parser
from rdv_tui.cli.commands import tui
from rdv_tui.cli.listen import parse_listen


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:0", port_alone=False) == ("127.0.0.1", 0)
    assert parse_listen("0.0.0.0:8080", port_alone=False) == ("0.0.0.0", 8080)
    assert parse_listen("[::1]:9000", port_alone=False) == ("::1", 9000)
    assert parse_listen(":8080", port_alone=False) == ("", 8080)  # every interface, like rdv serve
    for bad in ("8080", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad, port_alone=False)


def test_bad_replay_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "race.jsonl"
    broken.write_text('{"type":"AttemptStarted","t":0}\nnot json\n')
    args = build_parser().parse_args(["tui", "--replay", str(broken)])
    assert tui.run(args) == 2
    err = capsys.readouterr().err
    assert "cannot replay" in err and "line 1" in err
    args = build_parser().parse_args(["tui", "--replay", str(tmp_path / "missing.jsonl")])
    assert tui.run(args) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_bad_listen_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["tui", "--listen", "nope"])
    assert tui.run(args) == 2
    assert "--listen wants HOST:PORT" in capsys.readouterr().err


def test_no_command_means_tui_and_demo_parses() -> None:
    parser = build_parser()
    assert parser.parse_args(["tui"]).command == "tui"
    assert parser.parse_args(["demo"]).command == "demo"
    args = parser.parse_args(["tui", "--serve", "--listen", "0.0.0.0:8080"])
    assert args.serve and args.listen == "0.0.0.0:8080"
