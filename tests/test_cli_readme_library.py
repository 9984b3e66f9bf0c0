"""The README's "Use it as a library" section says what ``rdv_core`` exports: hold it to that.

"Everything a program needs is importable from ``rdv_core`` (its ``__all__`` is the public
API)", then a table of names, "every event class", the vocabularies, and the list of race
events "(that is ``RACE_EVENTS``, in order)". A user who copies a name from there and
gets an ImportError meets a README that is not true.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import rdv_core
import rdv_core.events as events

README = Path(__file__).resolve().parent.parent / "README.md"


def _section() -> str:
    text = README.read_text()
    found = re.search(r"<!-- section:library -->(.*?)<!-- /section:library -->", text, re.S)
    assert found is not None
    return found.group(1)


def _top_level_names(cell: str) -> list[str]:
    """Backticked names of a table cell outside parentheses (inside them: attributes,
    keyword arguments and call forms, e.g. ``dial``, ``fast_start=True``)."""
    names, depth = [], 0
    for token in re.findall(r"`[^`]*`|[()]", cell):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            names.append(token.strip("`"))
    return names


def test_every_name_of_the_table_is_importable_from_rdv_core() -> None:
    rows = re.findall(r"^\| ([^|]+) \| (.+) \|$", _section(), re.M)
    assert len(rows) >= 8, rows  # the attempt, addresses, the server, ... settings
    missing = []
    for what, cell in rows:
        for name in _top_level_names(cell):
            if name.startswith("rdv_core."):
                importlib.import_module(name)  # "the rest in rdv_core.doctor"
            elif name.isidentifier() and name not in rdv_core.__all__:
                missing.append(f"{what.strip()}: {name}")
            elif name.isidentifier():
                getattr(rdv_core, name)
    assert not missing, missing


def test_every_event_class_and_vocabulary_is_in_rdv_core() -> None:
    """The table promises "every event class" and the vocabularies ``RACE_EVENTS``,
    ``UPGRADE_EVENTS``, ``SERVER_EVENTS``, ``SESSION_EVENTS``: the events JSONL a user reads
    back carries ``Upgraded``, ``DoctorReported``, ``FilesOffered`` ..., and
    ``isinstance`` needs their classes."""
    classes = [
        name
        for name in events.__all__
        if isinstance(getattr(events, name), type)
        and issubclass(getattr(events, name), events.Event)
    ]
    assert "Upgraded" in classes and "DoctorReported" in classes
    missing = [name for name in classes if name not in rdv_core.__all__]
    assert not missing, missing
    for vocabulary in ("RACE_EVENTS", "UPGRADE_EVENTS", "SERVER_EVENTS", "SESSION_EVENTS"):
        assert vocabulary in rdv_core.__all__, vocabulary
        assert getattr(rdv_core, vocabulary) == getattr(events, vocabulary)


def test_the_race_events_are_listed_as_race_events_has_them() -> None:
    found = re.search(r"- Events: (.*?) \(that is `RACE_EVENTS`, in order\)", _section(), re.S)
    assert found is not None
    listed = re.findall(r"`(\w+)`", found.group(1))
    assert listed == [cls.__name__ for cls in events.RACE_EVENTS]
