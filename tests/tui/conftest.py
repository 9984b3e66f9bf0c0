"""Shared fixtures of the TUI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_core.events import Event, read_jsonl

DATA = Path(__file__).parent / "data"


@pytest.fixture
def race_file() -> Path:
    """A realistic dialer-side race with fixed timestamps (see ``data/race_p2p.jsonl``)."""
    return DATA / "race_p2p.jsonl"


@pytest.fixture
def race_events(race_file: Path) -> list[Event]:
    """The events of :func:`race_file`."""
    with race_file.open() as stream:
        return list(read_jsonl(stream))
