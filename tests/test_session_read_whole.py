"""``read_whole``: a small file for a bundle is read whole, and only as it was offered.

One ``read`` of one byte more than offered (docs/PROTOCOL.md 12.13): real files in
``tmp_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rdv_core.session import collect
from rdv_core.session._files import read_whole


@pytest.mark.parametrize("size", [0, 1, 4096, 64 * 1024])
def test_the_whole_file_is_read(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    [local] = collect([tmp_path / "f"])
    assert read_whole(local) == data


def test_a_file_that_changed_since_it_was_listed_is_not_sent(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    [local] = collect([tmp_path / "f"])
    (tmp_path / "f").write_bytes(b"abcd")
    with pytest.raises(OSError, match="changed since it was offered"):
        read_whole(local)


def test_short_reads_are_read_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A regular file reads short only at its end; a read that is short anyway (an
    # interrupted one, a network file system) must not send the file cut short.
    data = os.urandom(5000)
    (tmp_path / "f").write_bytes(data)
    [local] = collect([tmp_path / "f"])
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 1000)))
    assert read_whole(local) == data
