"""Server stats in the Prometheus text exposition format (``GET /metrics``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from rdv_core.server._stats import PairPath, ServerStats

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: A render that took longer than this is served again for :data:`REUSE_S`. A render
#: walks every open pair: 4 ms at 2,000 relayed pairs, 17-29 ms at 4,000 (docs/notes
#: 00-summary.md, stop 32), and one client pipelining scrapes (16 answered per loop turn)
#: made another client's ``/healthz`` wait 516 ms at 2,000 pairs. A small server renders
#: in well under a millisecond and is always fresh.
CHEAP_S: Final = 0.002
#: How long a costly render is served again: Prometheus scrapes every 15 s or so.
REUSE_S: Final = 1.0


class Scrapes:
    """``GET /metrics``: renders, or the last costly render while it is recent."""

    __slots__ = ("_kept", "_stats")

    def __init__(self, stats: Callable[[], ServerStats]) -> None:
        self._stats = stats
        #: (served until, text) of the last costly render.
        self._kept: tuple[float, str] | None = None

    def text(self) -> str:
        """The metrics text, at most :data:`REUSE_S` old."""
        now = time.monotonic()
        kept = self._kept
        if kept is not None and now < kept[0]:
            return kept[1]
        text = render(self._stats())
        costly = time.monotonic() - now > CHEAP_S
        self._kept = (now + REUSE_S, text) if costly else None
        return text


def render(stats: ServerStats) -> str:
    """The metrics text for a stats snapshot (ends with a newline)."""
    open_relayed = sum(1 for p in stats.pairs if p.path is PairPath.RELAYED)
    d2a = sum(p.bytes_dialer_to_accepter for p in stats.pairs)
    a2d = sum(p.bytes_accepter_to_dialer for p in stats.pairs)
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    metric("rdv_lobby_peers", "gauge", "Requests waiting in the lobby.", [("", stats.lobby)])
    metric(
        "rdv_pairs_open",
        "gauge",
        "Open pairs (waiting for the dialer's command, or relaying).",
        [("", len(stats.pairs))],
    )
    metric("rdv_pairs_relaying", "gauge", "Open pairs relaying.", [("", open_relayed)])
    metric("rdv_pairs_total", "counter", "Pairs matched.", [("", stats.pairs_total)])
    metric(
        "rdv_pairs_p2p_total",
        "counter",
        "Pairs whose dialer reported a direct connection (OTHER).",
        [("", stats.p2p_total)],
    )
    metric(
        "rdv_pairs_relayed_total",
        "counter",
        "Pairs whose dialer picked the relay (CONTINUE).",
        [("", stats.relay_total)],
    )
    metric(
        "rdv_relay_bytes_total",
        "counter",
        "Bytes relayed, both directions, open pairs included.",
        [("", stats.bytes_relayed)],
    )
    metric(
        "rdv_relay_open_bytes",
        "gauge",
        "Bytes relayed so far by open pairs, per direction.",
        [('{direction="dialer_to_accepter"}', d2a), ('{direction="accepter_to_dialer"}', a2d)],
    )
    metric(
        "rdv_rejects_total",
        "counter",
        "Error responses by HTTP status.",
        [(f'{{status="{code}"}}', n) for code, n in sorted(stats.rejects_by_status.items())],
    )
    metric(
        "rdv_lobby_timeouts_total",
        "counter",
        "Requests that waited in vain (408).",
        [("", stats.lobby_timeouts_total)],
    )
    metric(
        "rdv_replaced_total",
        "counter",
        "Requests evicted by a newer one with the same token and method (409).",
        [("", stats.replaced_total)],
    )
    metric(
        "rdv_lobby_abandoned_total",
        "counter",
        "Lobby clients that closed or dropped their conn before a peer came (not rejects).",
        [("", stats.lobby_abandoned_total)],
    )
    metric(
        "rdv_lobby_refused_total",
        "counter",
        "Requests refused by a lobby cap or a pair cap (limit=pairs_address, pairs_network), "
        "or evicted from a full lobby (limit=evicted; also counted in rdv_rejects_total).",
        [(f'{{limit="{k}"}}', n) for k, n in sorted(stats.lobby_refused_by_limit.items())],
    )
    metric(
        "rdv_up", "gauge", "1 while the server accepts requests.", [("", 0 if stats.closed else 1)]
    )
    return "\n".join(lines) + "\n"
