"""A batch's folders are listed once: files whose names are not there skip their look-ups.

``IncomingFile.prepare`` with a batch's ``listed`` cache (docs/PROTOCOL.md 12.7, 12.8)
must find exactly what the per-file ``lstat``s found: a file already there, a partial
to resume, a planted symlink, in a small folder (listed) and in one too big to list.
Real files in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rdv_core.session import _safepath
from rdv_core.session._errors import UnsafeName
from rdv_core.session._incoming_file import IncomingFile
from rdv_core.session._safepath import Listed, Verified, names_in

MTIME = 1_700_000_000_000_000_000


def _prepare(base: Path, name: str, size: int, listed: Listed) -> IncomingFile:
    file = IncomingFile(base, 1, name, size, MTIME)
    verified: Verified = {}
    file.prepare(verified, listed)
    return file


@pytest.fixture(params=["listed", "too big to list"])
def listing_limit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "listed":
        monkeypatch.setattr(_safepath, "LIST_MAX", 2)
    return str(request.param)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dl" / "tree"
    folder.mkdir(parents=True)
    for i in range(4):  # neighbours: more than LIST_MAX when it is 2
        (folder / f"other{i}").write_bytes(b"x")
    return folder


def test_a_new_name_starts_at_zero(tmp_path: Path, listing_limit: str) -> None:
    folder = _folder(tmp_path)
    listed: Listed = {}
    file = _prepare(tmp_path / "dl", "tree/new.bin", 10, listed)
    assert file.offset == 0
    expected = None if listing_limit != "listed" else frozenset(os.listdir(folder))
    assert names_in(str(folder.resolve()), listed) == expected


def test_a_file_already_there_is_found(tmp_path: Path, listing_limit: str) -> None:
    folder = _folder(tmp_path)
    target = folder / "same.bin"
    target.write_bytes(b"0123456789")
    os.utime(target, ns=(MTIME, MTIME))
    file = _prepare(tmp_path / "dl", "tree/same.bin", 10, {})
    assert file.offset == 10  # checked against the sender's digest, not sent again


def test_a_kept_partial_is_resumed(tmp_path: Path, listing_limit: str) -> None:
    folder = _folder(tmp_path)
    size = 128 * 1024  # big enough to keep a sidecar (12.7)
    (folder / "big.bin.rdvpart").write_bytes(b"a" * 1000)
    state = {"name": "tree/big.bin", "size": size, "mtime_ns": MTIME}
    (folder / "big.bin.rdvpart.json").write_text(json.dumps(state))
    file = _prepare(tmp_path / "dl", "tree/big.bin", size, {})
    assert file.offset == 1000


def test_a_planted_symlink_at_the_partial_name_is_refused(
    tmp_path: Path, listing_limit: str
) -> None:
    folder = _folder(tmp_path)
    (folder / "evil.bin.rdvpart").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeName, match="symlink"):
        _prepare(tmp_path / "dl", "tree/evil.bin", 10, {})


def test_one_listing_serves_a_batch(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    listed: Listed = {}
    first = _prepare(tmp_path / "dl", "tree/a.bin", 1, listed)
    (folder / "b.bin").write_bytes(b"planted after the listing")
    second = _prepare(tmp_path / "dl", "tree/b.bin", 1, listed)
    assert first.offset == second.offset == 0
    assert list(listed) == [str(folder.resolve())]
    # What was planted after the listing is never overwritten: it is stored beside it.
    assert second.store_whole(b"z", _digest(b"z")) == _digest(b"z").hex()
    assert (folder / "b.bin").read_bytes() == b"planted after the listing"
    assert (folder / "b (1).bin").read_bytes() == b"z"


def _digest(data: bytes) -> bytes:
    from blake3 import blake3

    return blake3(data).digest()
