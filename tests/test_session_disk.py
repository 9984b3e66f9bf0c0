"""Disk errors on the receiver: reported on both sides, partial file kept for resume."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdv_core.events import Event, FileAccepted, FileFailed
from rdv_core.session import TransferFailed, _pipeline

from tests.session_support import file_digest, make_file, session_pair, stream_pair


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size}", *options])
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "rdv-test", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@needs_root
@pytest.mark.parametrize("mib", [3, 6])  # 6 MiB: written by a worker thread (_pipeline.py)
async def test_disk_full_reported_on_both_sides_and_partial_kept(
    tmp_path: Path, mib: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pipeline, "WORKERS", mib > 4)
    size = mib << 20
    digest = make_file(tmp_path / "big.iso", size)
    ev_a: list[Event] = []
    with tmpfs(tmp_path / "small", f"{mib + 1}m") as dl:

        class FillOnAccept(list[Event]):
            """The offer fits when accepted; then something else fills the disk."""

            def append(self, event: Event) -> None:
                super().append(event)
                if isinstance(event, FileAccepted):
                    (dl / "filler").write_bytes(b"x" * size)

        ev_b = FillOnAccept()
        async with (
            stream_pair() as ends,
            session_pair(ends, dl, events_a=ev_a, events_b=ev_b) as (
                a,
                b,
            ),
        ):
            with pytest.raises(TransferFailed, match="disk full") as caught:
                await a.send_paths([tmp_path / "big.iso"])
            await a.send_chat("the session survives a failed file")
        assert caught.value.failures[0][0] == "big.iso"
        partial = dl / "big.iso.rdvpart"
        held = partial.stat().st_size
        assert 0 < held < size
        assert not (dl / "big.iso").exists()
        [failed_in] = [e for e in ev_b if isinstance(e, FileFailed)]
        [failed_out] = [e for e in ev_a if isinstance(e, FileFailed)]
        assert "disk full" in failed_in.reason and "partial file kept" in failed_in.reason
        assert "disk full" in failed_out.reason
        assert b.received[0].ok is False

        # Free space (here: grow the tmpfs) and run again: the transfer resumes.
        _remount(dl, f"size={4 * mib}m")
        async with stream_pair() as ends, session_pair(ends, dl) as (a, b):
            results = await a.send_paths([tmp_path / "big.iso"])
        assert results[0].resumed_from == held
        assert file_digest(dl / "big.iso") == digest


@needs_root
async def test_read_only_download_folder(tmp_path: Path) -> None:
    make_file(tmp_path / "a.txt", 100)
    ev_a: list[Event] = []
    with tmpfs(tmp_path / "ro", "1m", "ro") as dl:
        async with stream_pair() as ends, session_pair(ends, dl, events_a=ev_a) as (a, _b):
            with pytest.raises(TransferFailed, match="read-only file system"):
                await a.send_paths([tmp_path / "a.txt"])
    assert any(isinstance(e, FileFailed) for e in ev_a)
