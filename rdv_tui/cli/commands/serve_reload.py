"""``rdv serve --tls-cert``: take a renewed certificate without a restart.

A restart resets every relayed pair and empties the lobby, and certificates are renewed
every few weeks (Let's Encrypt: 90-day certificates renewed after 60), so ``rdv serve``
looks at its two files every minute and on ``SIGUSR1`` (a renewal hook's ``kill -USR1``).
A changed pair of files is loaded into a fresh context first: a half-renewed pair (a new
certificate, the old key) or a broken file is logged and the certificate in use is kept.
What passes is loaded into the server's own context: new conns get it, open ones keep
theirs. Standard library only at module level (``rdv serve`` never imports textual/rich).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Final

from rdv_tui.cli.commands.serve_tls import TlsFilesError, tls_context, validity_warning

__all__ = ["CHECK_EVERY_S", "CertWatch"]

log = logging.getLogger("rdv.server")

#: How often the files are looked at (two ``stat`` calls).
CHECK_EVERY_S: Final = 60.0

_Stamp = tuple[tuple[int, int, int, int], ...] | None


class CertWatch:
    """Reloads ``cert``/``key`` into ``context`` when they change (see module doc)."""

    def __init__(self, context: Any, cert: Path, key: Path) -> None:
        self._context = context
        self._cert = cert
        self._key = key
        self._seen = self._stamp()

    def _stamp(self) -> _Stamp:
        try:
            stats = [os.stat(path) for path in (self._cert, self._key)]
        except OSError:
            return None  # mid-renewal, or gone: the next look tells
        return tuple((s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def check(self, why: str) -> None:
        """Reload if the files changed since the last look (``why``: what made us look)."""
        import ssl

        stamp = self._stamp()
        if stamp == self._seen:
            if why == "SIGUSR1":
                log.info("SIGUSR1: --tls-cert %s and --tls-key unchanged", self._cert)
            return
        try:
            tls_context(self._cert, self._key, ask=False)
        except (TlsFilesError, OSError, ValueError) as exc:
            self._seen = stamp  # told once per change; a fixed pair changes again
            log.warning(
                "%s: not reloading the TLS certificate (%s): keeping the one in use", why, exc
            )
            return
        try:
            self._context.load_cert_chain(self._cert, self._key, password=_no_pass_phrase)
        except (ssl.SSLError, OSError) as exc:
            # Changed again between the two loads: look again next time.
            log.warning("%s: reloading the TLS certificate failed: %s", why, exc)
            return
        self._seen = stamp
        log.info("%s: reloaded --tls-cert %s: new conns get it", why, self._cert)
        warning = validity_warning(self._cert)
        if warning is not None:
            log.warning("%s", warning)

    async def run(self, every_s: float = CHECK_EVERY_S) -> None:
        """Look every ``every_s`` seconds, forever."""
        while True:
            await asyncio.sleep(every_s)
            self.check("changed on disk")


def _no_pass_phrase() -> str:
    raise TlsFilesError("the key is encrypted")
