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
    for bad in ("8080", "host:", "host:http"):
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
    assert "rdv tui: invalid --listen 'nope': expected HOST:PORT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listen", "want"),
    [
        # Before: rdv tui listened on [::1]:8080, a guess (rdv serve refused it already).
        ("::1:8080", "an IPv6 address takes brackets, e.g. [::1]:8080"),
        # Before: "--listen wants HOST:PORT", with no word of the brackets.
        ("::", "an IPv6 address takes brackets, e.g. [::]:8080"),
        ("fe80::1", "an IPv6 address takes brackets, e.g. [fe80::1]:8080"),
        ("127.0.0.1:-1", "port -1 is out of range (0-65535)"),
        ("127.0.0.1:70000", "port 70000 is out of range (0-65535)"),
        ("127.0.0.1:+5", "expected HOST:PORT"),
    ],
)
def test_the_listen_parser_says_what_is_wrong(listen: str, want: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_listen(listen, port_alone=False)
    assert str(info.value) == want


def test_no_command_means_tui_and_demo_parses() -> None:
    parser = build_parser()
    assert parser.parse_args(["tui"]).command == "tui"
    assert parser.parse_args(["demo"]).command == "demo"
    args = parser.parse_args(["tui", "--serve", "--listen", "0.0.0.0:8080"])
    assert args.serve and args.listen == "0.0.0.0:8080"
