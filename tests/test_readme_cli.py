"""What the README names on the command line and in its event lists exists, spelt the same.

A new user copies commands from the README: a flag the parser does not know is exit 2 and
a README that is not true. So every ``rdv COMMAND ... --flag`` in a code block or in inline
code must be an option of that very (sub)command, the option tables of pipe mode and
``rdv serve`` must name real options with their real defaults, and the lists of events
(fast start, ``rdv serve --events``) must be the vocabularies ``rdv_core.events`` has
(a kind added to the code and not to the README, or the other way round, fails here).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import typing
from dataclasses import fields
from pathlib import Path

import pytest

import rdv_core.events as events
from rdv_core import LobbyLimits
from rdv_core.events import Candidate
from rdv_core.events._base import FailReason
from rdv_tui.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
CommandPath = tuple[str, ...]


def _parsers(
    parser: argparse.ArgumentParser, path: CommandPath = ()
) -> dict[CommandPath, argparse.ArgumentParser]:
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_parsers(sub, (*path, name)))
    return found


PARSERS = _parsers(build_parser())


def _options(path: CommandPath) -> set[str]:
    return {option for action in PARSERS[path]._actions for option in action.option_strings}


def _command_lines() -> list[str]:
    """Lines of the README's code blocks, then its inline code spans."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", TEXT, re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", TEXT, flags=re.S)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def _rdv_commands() -> list[tuple[CommandPath, list[str], str]]:
    """Each ``rdv SUB [SUB] ...`` with the flags written after it (up to a pipe, a ``;``,
    an ``&``, a comment or a ``/`` between two commands)."""
    found = []
    for line in _command_lines():
        for match in re.finditer(r"(?:^|[\s(|;&])(?:\S*/)?rdv((?: [a-z][a-z-]*)+)", line):
            path: CommandPath = ()
            for word in match.group(1).split():
                if (*path, word) not in PARSERS:
                    break
                path = (*path, word)
            if not path:
                continue  # "rdv speaks ...", "rdv servers ...": prose, not a command
            rest = re.split(r"[|;&#]| / ", line[match.start(1) :])[0]
            flags = re.findall(r"(?<![\w-])(--?[a-zA-Z][a-z0-9-]*)", rest)
            found.append((path, flags, line.strip()))
    return found


def test_the_readme_shows_commands_of_every_kind() -> None:
    """The extraction itself works: a README without ``rdv serve --listen`` or
    ``rdv lab run`` lines would make the test below vacuous."""
    paths = {path for path, _, _ in _rdv_commands()}
    assert {("serve",), ("dial",), ("send",), ("receive",), ("doctor",), ("lab", "run")} <= paths
    assert sum(len(flags) for _, flags, _ in _rdv_commands()) > 50


def test_every_flag_of_an_rdv_command_in_the_readme_is_an_option_of_that_command() -> None:
    unknown = [
        f"rdv {' '.join(path)}: {flag} (in {line!r})"
        for path, flags, line in _rdv_commands()
        for flag in flags
        if flag not in _options(path)
    ]
    assert not unknown, unknown


def _table_rows(heading: str) -> list[tuple[str, str]]:
    """The rows of the first table after ``heading``: (first cell, the rest)."""
    start = TEXT.index(heading)
    table = re.search(r"\n(\|.*\|\n)+", TEXT[start:])
    assert table is not None, heading
    rows = re.findall(r"^\| (.+?) \| (.+) \|$", table.group(0), re.M)
    return [(first, rest) for first, rest in rows if not set(first) <= set("-|")]


@pytest.mark.parametrize(
    ("heading", "commands"),
    [
        ("## Pipe mode: `rdv dial` / `rdv accept`", [("dial",), ("accept",)]),
        ("## Running a server: `rdv serve`", [("serve",)]),
    ],
)
def test_every_option_of_a_readme_table_exists(heading: str, commands: list[CommandPath]) -> None:
    flags = [
        re.sub(r"^-(\w)\1+$", r"-\1", flag)  # -vv is -v twice
        for first, _ in _table_rows(heading)
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", first)
    ]
    assert len(flags) >= 8, flags
    missing = [
        f"{' '.join(c)} {flag}" for c in commands for flag in flags if flag not in _options(c)
    ]
    assert not missing, missing


def test_the_serve_table_states_the_defaults_the_parser_has() -> None:
    """``(default 10000`` in the table is what ``rdv serve`` uses when the flag is left out."""
    defaults = {
        action.option_strings[-1]: action.default
        for action in PARSERS[("serve",)]._actions
        if action.option_strings
    }
    checked = 0
    for first, meaning in _table_rows("## Running a server: `rdv serve`"):
        flag = re.match(r"`(--[a-z0-9-]+)", first)
        stated = re.search(r"\(default `?([^`;,)]+)`?", meaning)
        if flag is None or stated is None:
            continue
        default = defaults[flag.group(1)]
        value = stated.group(1).strip()
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert float(value) == default, (flag.group(1), value, default)
        else:
            assert value == str(default), (flag.group(1), value, default)
        checked += 1
    assert checked >= 8  # --listen, --lobby-timeout, the caps, --loop is "auto (default)"


def test_the_spaces_row_lists_every_space_the_cli_knows() -> None:
    """The table said ``default``, ``all``, ``public``, ``none`` and left out ``loopback``,
    which ``rdv dial --spaces`` accepts (and is the default for a server on this machine)."""
    result = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "dial", "--spaces", "bogus", "http://127.0.0.1:9/", "t"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    known = re.search(r"\(known: ([^)]*)\)", result.stderr)
    assert known is not None, result.stderr
    (row,) = [rest for first, rest in _table_rows("## Pipe mode") if first.startswith("`--spaces")]
    listed = row.split(". It limits")[0]
    missing = [name for name in known.group(1).split(", ") if f"`{name}`" not in listed]
    assert not missing, missing


def _backticked_after(lead: str, until: str) -> list[str]:
    start = TEXT.index(lead) + len(lead)
    return re.findall(r"`([A-Z]\w+)`", TEXT[start : TEXT.index(until, start)])


@pytest.mark.parametrize("command", ["dial", "accept", "send", "receive"])
def test_the_signal_exit_codes_the_readme_states_are_in_help(command: str) -> None:
    """The README says SIGHUP exits 129 in pipe mode and in send/receive; ``rdv dial
    --help`` and ``rdv accept --help`` listed 130 and 143 only."""
    for code in ("129", "130", "143"):
        assert f"`{code}`" in TEXT or f" {code} " in TEXT, code
    epilog = PARSERS[(command,)].epilog or ""
    missing = [code for code in ("129", "130", "143") if code not in epilog]
    assert not missing, (command, missing)


def test_the_fast_start_events_are_the_upgrade_vocabulary() -> None:
    """``FastStartNegotiated`` is in ``UPGRADE_EVENTS`` (and in every ``--fast-start``
    events file) but was missing from the README's list."""
    listed = _backticked_after("rides out longer outages). Events:", "background race")
    assert set(listed) == {cls.__name__ for cls in events.UPGRADE_EVENTS}


def test_the_serve_events_flag_lists_the_server_vocabulary_in_order() -> None:
    (row,) = [
        rest for first, rest in _table_rows("## Running a server") if first == "`--events FILE`"
    ]
    listed = re.findall(r"`([A-Z]\w+)`", row)
    assert listed == [cls.__name__ for cls in events.SERVER_EVENTS]


def test_every_event_of_the_verbose_example_is_a_race_event() -> None:
    opening = TEXT.index("```\n", TEXT.index("What `-v` shows")) + 4
    block = TEXT[opening : TEXT.index("```\n", opening)]
    shown = re.findall(r"^\s+[\d.]+ ms  (\w+)", block, re.M)
    assert len(shown) >= 8, block
    race = {cls.__name__ for cls in events.RACE_EVENTS}
    assert not [name for name in shown if name not in race]


def test_every_python_block_of_the_readme_compiles() -> None:
    blocks = re.findall(r"```python\n(.*?)```", TEXT, re.S)
    assert len(blocks) >= 4  # peer, transfer, aiohttp, server
    for number, block in enumerate(blocks):
        compile(block, f"README.md python block {number}", "exec")


def test_the_failure_reasons_are_the_ones_events_carry() -> None:
    """``CandidateFailed.reason`` is one of ``FailReason``'s words: the README listed six of
    its nine (``eof``, ``protocol`` and ``error`` reach every ``--events`` file too)."""
    start = TEXT.index("Every failure is classified (") + len("Every failure is classified (")
    listed = set(re.findall(r"[a-z]+", TEXT[start : TEXT.index("with its errno", start)]))
    assert set(typing.get_args(FailReason)) <= listed


def test_the_candidate_fields_are_the_dataclass_fields() -> None:
    """The names outside parentheses (inside: the values of ``origin``, what ``via`` holds)."""
    start = TEXT.index("candidates carry a per-attempt")
    listed, depth = [], 0
    for token in re.findall(r"`[^`]*`|[()]", TEXT[start : TEXT.index(". ", start)]):
        if token in "()":
            depth += 1 if token == "(" else -1
        elif depth == 0:
            listed.append(token.strip("`"))
    assert listed == [field.name for field in fields(Candidate)]


def test_the_lobby_limits_named_are_every_field() -> None:
    """The README named five of LobbyLimits' seven caps (not the head caps)."""
    start = TEXT.index("`RdvServer(lobby_limits=LobbyLimits(")
    named = re.findall(r"(\w+)=\.\.\.", TEXT[start : TEXT.index("`", start + 1)])
    assert named == [field.name for field in fields(LobbyLimits)]
