"""The thread-side work on a batch of incoming files (:mod:`._incoming` runs it off the loop).

Preparing every file of an accepted offer (folders made and checked once per batch), and
storing the files of a bundle whole (small files, docs/PROTOCOL.md section 12).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from rdv_core.session import _frames as fr
from rdv_core.session._errors import UnsafeName
from rdv_core.session._incoming_file import Folders, IncomingFile
from rdv_core.session._safepath import Listed, Verified
from rdv_core.session._transfers import describe_os_error

#: One file of a bundle: where it goes, its bytes, the sender's digest.
Job = tuple[IncomingFile, bytes, bytes]


def store_all(jobs: list[Job]) -> list[tuple[bool, str]]:
    """Store the files of one bundle (in a thread): ``(True, digest)`` or ``(False, why)``."""
    outcomes: list[tuple[bool, str]] = []
    folders: Folders = {}  # each folder is reached (without symlinks) once per bundle
    try:
        for file, data, digest in jobs:
            try:
                outcomes.append((True, file.store_whole(data, digest, folders)))
            except UnsafeName as exc:
                outcomes.append((False, f"cannot store {file.name}: {exc}"))
            except ValueError as exc:  # the digest did not match: nothing was written
                outcomes.append((False, str(exc)))
            except OSError as exc:
                outcomes.append((False, describe_os_error(exc, f"cannot store {file.name}")))
    finally:
        for fd in folders.values():
            os.close(fd)
    return outcomes


def prepare_all(
    base: Path,
    files: tuple[fr.OfferedFile, ...],
    parts: list[tuple[str, ...]],
    stop: threading.Event | None = None,
) -> list[IncomingFile | str]:
    """Prepare every file of an accepted offer (in a thread): the file, or why it failed.

    ``parts`` are the components of each name, checked when the offer came.
    """
    prepared: list[IncomingFile | str] = []
    verified: Verified = {}  # folders are made and checked once per batch
    listed: Listed = {}  # and listed once per batch
    for f, names in zip(files, parts, strict=True):
        file = IncomingFile(base, f.id, f.path, f.size, f.mtime_ns, names)
        try:
            file.prepare(verified, listed, stop)
        except (OSError, UnsafeName) as exc:
            prepared.append(describe_os_error(exc, f"cannot store {f.path}"))
            continue
        prepared.append(file)
    return prepared
