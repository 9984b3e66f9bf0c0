"""Listing the folders ``rdv send`` is given, on a real file system."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rdv_core.session import collect


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
def test_a_file_deleted_while_its_folder_is_listed_is_skipped() -> None:
    """A file that goes between the folder's listing and its ``lstat`` is not sent.

    ``/proc/PID/fdinfo`` lists the descriptor of the listing itself, which is closed
    before its entries are looked at: the same race as a program deleting its temporary
    files in a folder being sent. It ended ``rdv send DIR`` (exit 2) with
    ``[Errno 2] No such file or directory: '/proc/.../fdinfo/3'``.
    """
    folder = Path(f"/proc/{os.getpid()}/fdinfo")
    files = collect([folder])
    assert files  # the descriptors still open (pytest's capture files, at least)
    assert all(f.name.startswith("fdinfo/") for f in files)
