"""Codes whose key confirmation failed: never to be used again.

A failed key confirmation means the peer derived another key: the other side typed a
different code, or someone who took the nameplate on the server made one guess at the
secret (1 in 65536). Using the same code again would hand that someone another guess,
so such a code is *burned*: :class:`BurnedCodes` remembers it on disk and
:func:`~rdv_core.session._connect.connect_session` refuses it from then on.

The file holds one SHA-256 per line (of a label and the whole code), not the codes.
That hides nothing from someone who can read the file and try every code, but a burned
code is worthless anyway; it keeps codes out of casual view.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from rdv_core.session._codes import Code

log = logging.getLogger("rdv.session")

#: Overrides the folder of the burned-codes file (tests, several profiles).
ENV_STATE_DIR = "RDV_STATE_DIR"
_LABEL = b"rdv burned code/1\x00"
#: Entries kept: the oldest are dropped beyond this (codes are random, reuse is rare).
MAX_ENTRIES = 10_000


def default_burned_path() -> Path:
    """``$RDV_STATE_DIR/burned-codes``, else the platform's state folder for rdv."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override).expanduser() / "burned-codes"
    from platformdirs import user_state_path

    return user_state_path("rdv") / "burned-codes"


class BurnedCodes:
    """The burned codes stored in one file (created on the first :meth:`add`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_burned_path()

    @staticmethod
    def _key(code: Code) -> str:
        return hashlib.sha256(_LABEL + code.password).hexdigest()

    def _entries(self) -> list[str]:
        try:
            return self.path.read_text("ascii").split()
        except (OSError, UnicodeDecodeError):
            return []

    def __contains__(self, code: Code) -> bool:
        return self._key(code) in self._entries()

    def add(self, code: Code) -> None:
        """Burn ``code``; a file that cannot be written is logged, not raised."""
        entries = [*self._entries(), self._key(code)][-MAX_ENTRIES:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("\n".join(entries) + "\n", "ascii")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not remember the burned code in %s: %s", self.path, exc)
