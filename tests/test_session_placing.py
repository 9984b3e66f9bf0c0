"""Placing a verified file never overwrites (docs/PROTOCOL.md 12.8), with or without renameat2.

``place_as`` renames with ``RENAME_NOREPLACE`` where Linux has it (one syscall) and
links + unlinks elsewhere; both must pick the same free name and leave what was there
untouched. Real files in ``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rdv_core.session import _safepath
from rdv_core.session._safepath import place_as


@pytest.fixture(params=["renameat2", "link"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "link":
        monkeypatch.setattr(_safepath._noreplace, "works", False)
    elif not _safepath._noreplace.works:
        pytest.skip("no renameat2 here")
    return str(request.param)


def test_a_free_name_is_taken(tmp_path: Path, how: str) -> None:
    (tmp_path / "a.part").write_bytes(b"new")
    assert place_as(str(tmp_path / "a.part"), str(tmp_path / "a.txt")) == str(tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_bytes() == b"new"
    assert not (tmp_path / "a.part").exists()


def test_a_taken_name_is_never_overwritten(tmp_path: Path, how: str) -> None:
    (tmp_path / "a.txt").write_bytes(b"old")
    (tmp_path / "a (1).txt").write_bytes(b"older")
    (tmp_path / "a.part").write_bytes(b"new")
    placed = place_as(str(tmp_path / "a.part"), str(tmp_path / "a.txt"))
    assert placed == str(tmp_path / "a (2).txt")
    assert (tmp_path / "a.txt").read_bytes() == b"old"
    assert (tmp_path / "a (1).txt").read_bytes() == b"older"
    assert (tmp_path / "a (2).txt").read_bytes() == b"new"
    assert not (tmp_path / "a.part").exists()


def test_a_symlink_at_the_target_is_left_alone(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "a.txt").symlink_to(outside)
    (tmp_path / "a.part").write_bytes(b"new")
    placed = place_as(str(tmp_path / "a.part"), str(tmp_path / "a.txt"))
    assert placed == str(tmp_path / "a (1).txt")
    assert outside.read_bytes() == b"keep" and (tmp_path / "a.txt").is_symlink()


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_linux_uses_renameat2() -> None:
    assert _safepath._noreplace.works
