"""Batched file events: one event per offer or bundle, or the per-file events they stand for.

A session made with ``batched_events=True`` reports an offer's files in one
``FilesOffered``, their acceptance in one ``FilesAccepted`` and a bundle's verified
files in one ``FilesCompleted`` (docs/ARCHITECTURE.md section 2); any other session
gives its callback the per-file events, as before. Real sessions over loopback TCP;
the CLI's progress view must count the same either way.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from rich.console import Console

from rdv_core.events import (
    Event,
    FileAccepted,
    FileCompleted,
    FileOffered,
    FilesAccepted,
    FilesCompleted,
    FilesOffered,
)
from rdv_core.session import collect
from rdv_tui.transfer_ui import TransferView

from tests.session_support import make_file, session_pair, stream_pair

FILES = 900  # several offers (about 400 short names each), several bundles


async def _send(tmp_path: Path, batched: bool) -> tuple[list[Event], list[Event], int, int]:
    src, dl = tmp_path / "tree", tmp_path / f"dl-{batched}"
    for i in range(FILES):
        make_file(src / f"d{i % 3}" / f"f{i:03d}.bin", 100 + i * 7, i)
    make_file(src / "big.bin", 200 * 1024, 1)  # data + done: per-file events both ways
    dl.mkdir()
    files = collect([src])
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    async with (
        stream_pair() as ends,
        session_pair(ends, dl, events_a=ev_a, events_b=ev_b, batched_events=batched) as (a, b),
    ):
        await a.send_files(files)
        assert all(r.ok for r in b.received) and len(b.received) == len(files)
    return ev_a, ev_b, len(files), sum(f.size for f in files)


def _all_files(paths: list[str]) -> bool:
    return all(Path(p).is_file() for p in paths)


def _per_file(events: list[Event]) -> Counter[type[Event]]:
    return Counter(type(e) for e in events)


async def test_batched_sessions_report_offers_and_bundles_at_once(tmp_path: Path) -> None:
    ev_a, ev_b, count, size = await _send(tmp_path, batched=True)
    for events, direction in ((ev_a, "out"), (ev_b, "in")):
        kinds = _per_file(events)
        assert kinds[FileOffered] == kinds[FileAccepted] == 0
        assert 2 <= kinds[FilesOffered] == kinds[FilesAccepted] < 10
        offered = [i for e in events if isinstance(e, FilesOffered) for i in e.ids]
        accepted = [i for e in events if isinstance(e, FilesAccepted) for i in e.ids]
        assert len(offered) == count and sorted(offered) == sorted(accepted)
        bundled = [e for e in events if isinstance(e, FilesCompleted)]
        assert len(bundled) >= 2 and all(e.direction == direction for e in bundled)
        done = [i for e in bundled for i in e.ids]
        done += [e.transfer_id for e in events if isinstance(e, FileCompleted)]
        assert kinds[FileCompleted] == 1  # the big file, sent as data + done
        assert sorted(done) == sorted(offered)
    paths = [p for e in ev_b if isinstance(e, FilesCompleted) for p in e.paths]
    assert _all_files(paths)
    # The view counts the same as from per-file events.
    for events, direction in ((ev_a, "out"), (ev_b, "in")):
        view = TransferView(Console(file=io.StringIO()), direction)  # type: ignore[arg-type]
        for e in events:
            view(e)
        assert (view.files_ok, view.files_total, view.bytes_done) == (count, count, size)


async def test_other_sessions_get_one_event_per_file_as_before(tmp_path: Path) -> None:
    ev_a, ev_b, count, size = await _send(tmp_path, batched=False)
    for events, direction in ((ev_a, "out"), (ev_b, "in")):
        kinds = _per_file(events)
        assert kinds[FilesOffered] == kinds[FilesAccepted] == kinds[FilesCompleted] == 0
        assert kinds[FileOffered] == kinds[FileAccepted] == kinds[FileCompleted] == count
        view = TransferView(Console(file=io.StringIO()), direction)  # type: ignore[arg-type]
        for e in events:
            view(e)
        assert (view.files_ok, view.files_total, view.bytes_done) == (count, count, size)


def test_a_batched_event_stands_for_its_per_file_events() -> None:
    offered = FilesOffered(1.5, 3, "in", (7, 8), ("a", "b/c"), (1, 2))
    assert list(offered.each()) == [
        FileOffered(1.5, 7, "in", "a", 1),
        FileOffered(1.5, 8, "in", "b/c", 2),
    ]
    assert list(FilesAccepted(2.0, 3, "out", (7,), (5,)).each()) == [FileAccepted(2.0, 7, "out", 5)]
    done = FilesCompleted(3.0, "in", (7,), ("a",), (1,), ("ab",), ("/x/a",))
    assert list(done.each()) == [FileCompleted(3.0, 7, "in", "a", 1, "ab", "/x/a")]
