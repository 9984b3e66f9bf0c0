"""Shared fixtures of the TUI tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdv_core.events import Event, read_jsonl

DATA = Path(__file__).parent / "data"

#: A memory file system for tests that make and receive thousands of files: on the shared
#: machine's disk 10,000 small files took 5-9 s to make (and as long to receive) while other
#: tests wrote, against 0.2 s in memory; what the tests check is the app, not the disk.
MEMORY_FS = Path("/dev/shm")


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory in memory (``/dev/shm``), removed after the test; ``tmp_path``
    where there is no such file system."""
    if not (MEMORY_FS.is_dir() and os.access(MEMORY_FS, os.W_OK | os.X_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="rdv-test-", dir=MEMORY_FS))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def race_file() -> Path:
    """A realistic dialer-side race with fixed timestamps (see ``data/race_p2p.jsonl``)."""
    return DATA / "race_p2p.jsonl"


@pytest.fixture
def race_events(race_file: Path) -> list[Event]:
    """The events of :func:`race_file`."""
    with race_file.open() as stream:
        return list(read_jsonl(stream))
