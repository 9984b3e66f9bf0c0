"""Many small files in one send (issue 14): pipelined offers, lazy opens, send totals."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rdv_core.session import IncomingOffer
from rdv_core.session import _frames as fr

from tests.session_support import session_pair, stream_pair

FILES = 600


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"d{i // 200}"
        if i % 200 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.txt").write_bytes(b"%d" % i * (1 + i % 7))


@contextmanager
def lowered_nofile(spare: int) -> Iterator[int]:
    """RLIMIT_NOFILE (soft) at the descriptors open now plus ``spare``, then back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    limit = in_use + spare
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_many_files_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    """The receiver opens one file at a time (issue 13 item 11), not one per offered file."""
    source = tmp_path / "tree"
    make_tree(source, FILES)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    offers: list[IncomingOffer] = []

    async def accept(offer: IncomingOffer) -> bool:
        offers.append(offer)
        return True

    async with stream_pair() as ends, session_pair(ends, inbox, on_offer=accept) as (a, b):
        # Far fewer descriptors than files in one batch, let alone in the whole send.
        with lowered_nofile(64):
            results = await a.send_paths([source])
    assert len(results) == FILES and all(r.ok for r in results)
    assert len(b.received) == FILES and all(r.ok for r in b.received)
    got = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.txt"))
    want = sorted(p.relative_to(tmp_path).as_posix() for p in source.rglob("*.txt"))
    assert got == want
    assert not list(inbox.rglob("*.rdvpart*")), "no partial or sidecar left behind"
    sample = inbox / "tree" / "d2" / "f00456.txt"
    assert sample.read_bytes() == (source / "d2" / "f00456.txt").read_bytes()
    # Several batches, all naming the same send and its totals.
    assert len(offers) > 1
    sends = {o.send for o in offers}
    assert len(sends) == 1
    (send,) = sends
    assert send is not None and send.files == FILES
    assert send.first == offers[0].batch
    assert send.bytes == sum(p.stat().st_size for p in source.rglob("*.txt"))


async def test_offers_are_pipelined_to_a_peer_that_announces_it(tmp_path: Path) -> None:
    """Batches are offered ahead of the one streaming: a receiver sees several open."""
    source = tmp_path / "tree"
    make_tree(source, FILES)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    open_at_once = 0
    decided: list[int] = []
    receiver: list[Any] = []

    async def slow_accept(offer: IncomingOffer) -> bool:
        nonlocal open_at_once
        import asyncio

        await asyncio.sleep(0.05)
        # Offers that arrived and wait for their answer (ours included): pipelined offers.
        open_at_once = max(open_at_once, len(receiver[0]._incoming._open_offers))
        decided.append(offer.batch)
        return True

    async with stream_pair() as ends, session_pair(ends, inbox, on_offer=slow_accept) as (a, b):
        receiver.append(b)
        results = await a.send_paths([source])
    assert all(r.ok for r in results)
    assert open_at_once > 1, "the sender waited for each answer before the next offer"
    # ...and yet decided one after the other, in the order they came (a prompt per send).
    assert decided == sorted(decided), decided


def test_offer_send_totals_round_trip_and_stay_optional() -> None:
    files = (fr.OfferedFile(1, "a.txt", 3, 0),)
    with_totals = fr.Offer(4, files, fr.SendTotals(4, 1000, 123456))
    assert fr.decode(fr.encode(with_totals)) == with_totals
    # What an older sender sends (no "send" field) still decodes.
    plain = fr.encode(fr.Offer(4, files))
    assert b'"send"' not in plain
    assert fr.decode(plain) == fr.Offer(4, files, None)
