"""rdv: relay-assisted peer-to-peer TCP (the rdv/1 protocol), as an asyncio library.

This package never imports textual or rich: it is the headless core that the TUI, the CLI
and other applications build on. Everything a library user needs is importable from here
(``from rdv_core import Client, RdvServer, connect_session``); the names are loaded on first
use, so that ``import rdv_core.wire`` does not pull in the server, the session's
cryptography or aiohttp.

Layers, each a sub-package that imports only the ones below it (docs/ARCHITECTURE.md
section 1): :mod:`rdv_core.wire` (the sans-IO rdv/1 format, docs/PROTOCOL.md),
:mod:`rdv_core.events`, :mod:`rdv_core.client` (the attempt and the race),
:mod:`rdv_core.server` (lobby, relay and fronts), :mod:`rdv_core.session` (encrypted chat
and files on top of a conn), :mod:`rdv_core.lab` (the NAT lab); :mod:`rdv_core.errors` is
the one error tree and :mod:`rdv_core.config` the user's settings. A module whose name
starts with an underscore is internal: its names may change without notice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rdv_core.client import (
        Client,
        Conn,
        Meta,
        Offers,
        Picker,
        PickFirst,
        WaitConstant,
        WaitForP2P,
    )
    from rdv_core.config import (
        ConfigError,
        Settings,
        load_settings,
        resolve_server,
    )
    from rdv_core.errors import (
        MAX_BODY,
        NoConnectionError,
        RdvError,
        RdvProtocolError,
        RdvTimeoutError,
        ServerConnectError,
        ServerRejectedError,
    )
    from rdv_core.events import (
        RACE_EVENTS,
        SERVER_EVENTS,
        SESSION_EVENTS,
        Candidate,
        Event,
        EventCallback,
        EventRecorder,
        read_jsonl,
        write_jsonl,
    )
    from rdv_core.server import (
        NativeFront,
        PairHandler,
        PairStats,
        PeerInfo,
        RdvServer,
        Reject,
        ServerStats,
        allow_rdv_methods,
        make_observed_addr,
        mount,
        rdv_handler,
        serve_native,
        start_native,
    )
    from rdv_core.session import (
        Code,
        CodeError,
        CodeMismatch,
        ConnectionLost,
        FrameError,
        IncomingOffer,
        OfferCallback,
        PeerError,
        ProtocolViolation,
        Session,
        SessionError,
        TamperedError,
        TransferFailed,
        TransferRejected,
        TransferResult,
        UnsafeName,
        connect_session,
        describe_path,
        generate_code,
        parse_code,
    )
    from rdv_core.wire import (
        ACCEPT,
        DIAL,
        Addr,
        AddrError,
        AddrSpace,
        ProtocolError,
        format_spaces,
        parse_spaces,
    )

#: Public name -> the sub-package that defines it.
_SOURCES: dict[str, str] = {
    "Client": "rdv_core.client",
    "Conn": "rdv_core.client",
    "Meta": "rdv_core.client",
    "Offers": "rdv_core.client",
    "PickFirst": "rdv_core.client",
    "Picker": "rdv_core.client",
    "WaitConstant": "rdv_core.client",
    "WaitForP2P": "rdv_core.client",
    "NativeFront": "rdv_core.server",
    "PairHandler": "rdv_core.server",
    "PairStats": "rdv_core.server",
    "PeerInfo": "rdv_core.server",
    "RdvServer": "rdv_core.server",
    "Reject": "rdv_core.server",
    "ServerStats": "rdv_core.server",
    "allow_rdv_methods": "rdv_core.server",
    "make_observed_addr": "rdv_core.server",
    "mount": "rdv_core.server",
    "rdv_handler": "rdv_core.server",
    "serve_native": "rdv_core.server",
    "start_native": "rdv_core.server",
    "Code": "rdv_core.session",
    "CodeError": "rdv_core.session",
    "CodeMismatch": "rdv_core.session",
    "ConnectionLost": "rdv_core.session",
    "FrameError": "rdv_core.session",
    "IncomingOffer": "rdv_core.session",
    "OfferCallback": "rdv_core.session",
    "PeerError": "rdv_core.session",
    "ProtocolViolation": "rdv_core.session",
    "Session": "rdv_core.session",
    "SessionError": "rdv_core.session",
    "TamperedError": "rdv_core.session",
    "TransferFailed": "rdv_core.session",
    "TransferRejected": "rdv_core.session",
    "TransferResult": "rdv_core.session",
    "UnsafeName": "rdv_core.session",
    "connect_session": "rdv_core.session",
    "describe_path": "rdv_core.session",
    "generate_code": "rdv_core.session",
    "parse_code": "rdv_core.session",
    "MAX_BODY": "rdv_core.errors",
    "NoConnectionError": "rdv_core.errors",
    "RdvError": "rdv_core.errors",
    "RdvProtocolError": "rdv_core.errors",
    "RdvTimeoutError": "rdv_core.errors",
    "ServerConnectError": "rdv_core.errors",
    "ServerRejectedError": "rdv_core.errors",
    "ACCEPT": "rdv_core.wire",
    "Addr": "rdv_core.wire",
    "AddrError": "rdv_core.wire",
    "AddrSpace": "rdv_core.wire",
    "DIAL": "rdv_core.wire",
    "ProtocolError": "rdv_core.wire",
    "format_spaces": "rdv_core.wire",
    "parse_spaces": "rdv_core.wire",
    "Candidate": "rdv_core.events",
    "Event": "rdv_core.events",
    "EventCallback": "rdv_core.events",
    "EventRecorder": "rdv_core.events",
    "RACE_EVENTS": "rdv_core.events",
    "SERVER_EVENTS": "rdv_core.events",
    "SESSION_EVENTS": "rdv_core.events",
    "read_jsonl": "rdv_core.events",
    "write_jsonl": "rdv_core.events",
    "ConfigError": "rdv_core.config",
    "Settings": "rdv_core.config",
    "load_settings": "rdv_core.config",
    "resolve_server": "rdv_core.config",
}

__all__ = [
    "ACCEPT",
    "DIAL",
    "MAX_BODY",
    "RACE_EVENTS",
    "SERVER_EVENTS",
    "SESSION_EVENTS",
    "Addr",
    "AddrError",
    "AddrSpace",
    "Candidate",
    "Client",
    "Code",
    "CodeError",
    "CodeMismatch",
    "ConfigError",
    "Conn",
    "ConnectionLost",
    "Event",
    "EventCallback",
    "EventRecorder",
    "FrameError",
    "IncomingOffer",
    "Meta",
    "NativeFront",
    "NoConnectionError",
    "OfferCallback",
    "Offers",
    "PairHandler",
    "PairStats",
    "PeerError",
    "PeerInfo",
    "PickFirst",
    "Picker",
    "ProtocolError",
    "ProtocolViolation",
    "RdvError",
    "RdvProtocolError",
    "RdvServer",
    "RdvTimeoutError",
    "Reject",
    "ServerConnectError",
    "ServerRejectedError",
    "ServerStats",
    "Session",
    "SessionError",
    "Settings",
    "TamperedError",
    "TransferFailed",
    "TransferRejected",
    "TransferResult",
    "UnsafeName",
    "WaitConstant",
    "WaitForP2P",
    "__version__",
    "allow_rdv_methods",
    "connect_session",
    "describe_path",
    "format_spaces",
    "generate_code",
    "load_settings",
    "make_observed_addr",
    "mount",
    "parse_code",
    "parse_spaces",
    "rdv_handler",
    "read_jsonl",
    "resolve_server",
    "serve_native",
    "start_native",
    "write_jsonl",
]


def __getattr__(name: str) -> Any:
    # PEP 562: load a sub-package only when one of its names is first used.
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
