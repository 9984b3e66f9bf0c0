"""Command palette provider: recent servers and codes, one keystroke away.

Choosing one fills the Connect form (and shows the Connect screen).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

if TYPE_CHECKING:
    from rdv_tui.app import RdvApp


class RecentProvider(Provider):
    """``Use server …`` and ``Use code …`` for every remembered server and code."""

    def _entries(self) -> list[tuple[str, str, str]]:
        app = cast("RdvApp", self.app)
        entries = [("server", s, f"Use server {s}") for s in app.recent.servers]
        entries += [("code", c, f"Use code {c}") for c in app.recent.codes]
        return entries

    async def discover(self) -> Hits:
        for kind, value, title in self._entries():
            # Content, not str: a str prompt is read as markup, and a code or URL with
            # [/x] in it ended the app when the palette opened.
            yield DiscoveryHit(
                Content(title), partial(self._use, kind, value), text=title, help=f"recent {kind}"
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for kind, value, title in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(escape(title)),  # it reads its argument as markup
                    partial(self._use, kind, value),
                    text=title,
                    help=f"recent {kind}: fill the Connect form",
                )

    async def _use(self, kind: str, value: str) -> None:
        app = cast("RdvApp", self.app)
        await app.switch_mode("connect")
        app.connect_screen.use_recent(kind, value)
