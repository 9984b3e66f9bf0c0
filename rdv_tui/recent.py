"""Recent servers and codes, and the form settings used with each server (a small JSON file).

The file lives in the user's config folder (``platformdirs``) and is written with
mode 0600: codes are secrets while they are in use. Reading never fails the app: a
missing or damaged file is an empty history.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("rdv.tui")

MAX_ITEMS = 8
"""How many servers and codes are kept (most recent first)."""


def default_path() -> Path:
    """``<user config dir>/rdv/recent.json``."""
    from platformdirs import user_config_path

    return user_config_path("rdv") / "recent.json"


@dataclass(slots=True)
class Recent:
    """The remembered servers and codes, most recent first.

    Attributes:
        path: The JSON file; None keeps everything in memory (tests, demo).
    """

    path: Path | None
    servers: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Connect form settings (role, spaces, picker, ...) by server key (its URL, or
    ``embedded`` for the app's own server, whose port changes every run)."""

    @classmethod
    def load(cls, path: Path | None) -> Recent:
        """Read ``path``; a missing or unreadable file gives an empty history."""
        recent = cls(path)
        if path is None or not path.exists():
            return recent
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            recent.servers = [str(s) for s in data.get("servers", [])][:MAX_ITEMS]
            recent.codes = [str(c) for c in data.get("codes", [])][:MAX_ITEMS]
            settings = data.get("settings", {})
            recent.settings = {str(k): dict(v) for k, v in settings.items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
        return recent

    def remember(
        self,
        server: str | None = None,
        code: str | None = None,
        *,
        settings: dict[str, Any] | None = None,
        settings_key: str | None = None,
    ) -> None:
        """Put ``server`` and ``code`` first (once), keep ``settings`` for ``settings_key``
        (default: ``server``), then save."""
        if server:
            self.servers = [server, *(s for s in self.servers if s != server)][:MAX_ITEMS]
        if code:
            self.codes = [code, *(c for c in self.codes if c != code)][:MAX_ITEMS]
        key = settings_key or server
        if settings is not None and key:
            self.settings.pop(key, None)
            self.settings[key] = settings
            keep = {*self.servers, "embedded"}
            self.settings = {k: v for k, v in self.settings.items() if k in keep}
        self.save()

    def save(self) -> None:
        """Write the file (0600); a failure is logged, never raised."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = {"servers": self.servers, "codes": self.codes, "settings": self.settings}
            text = json.dumps(data, indent=1)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc)
