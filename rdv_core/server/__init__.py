"""The rdv/1 server: lobby and matching, the relay, hooks, observed addresses, metrics, fronts.

:class:`RdvServer` is the core (docs/PROTOCOL.md sections 3 to 5 and 8); it knows nothing of
HTTP frameworks. Two fronts feed it: :func:`start_native` (what ``rdv serve`` runs) and
:func:`mount` for an aiohttp application. :func:`mount`, :func:`rdv_handler` and
:func:`allow_rdv_methods` are loaded on first use, so that a native server never imports
aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rdv_core.server._core import RdvServer, ServerStats
from rdv_core.server._handler import PairHandler, PeerInfo, Reject
from rdv_core.server._lobby import LobbyLimits
from rdv_core.server._native import NativeFront, serve_native, start_native
from rdv_core.server._observed import make_observed_addr
from rdv_core.server._probe_ports import ProbePort, start_probe_ports
from rdv_core.server._probes import ProbeAnswer, ProbeService
from rdv_core.server._relay_silence import relay_silence
from rdv_core.server._stats import PairPath, PairStats

if TYPE_CHECKING:
    from rdv_core.server._aiohttp import allow_rdv_methods, mount, no_continue, rdv_handler

__all__ = [
    "LobbyLimits",
    "NativeFront",
    "PairHandler",
    "PairPath",
    "PairStats",
    "PeerInfo",
    "ProbeAnswer",
    "ProbePort",
    "ProbeService",
    "RdvServer",
    "Reject",
    "ServerStats",
    "allow_rdv_methods",
    "make_observed_addr",
    "mount",
    "no_continue",
    "rdv_handler",
    "relay_silence",
    "serve_native",
    "start_native",
    "start_probe_ports",
]

_AIOHTTP_NAMES = frozenset({"allow_rdv_methods", "mount", "no_continue", "rdv_handler"})


def __getattr__(name: str) -> Any:
    # PEP 562: the aiohttp front is imported only by those who use it.
    if name in _AIOHTTP_NAMES:
        from rdv_core.server import _aiohttp

        return getattr(_aiohttp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
