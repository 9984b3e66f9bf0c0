"""Fast start: a conn that starts on the relay and moves to a direct path (docs/PROTOCOL.md
section 16).

:mod:`._frames` is the wire format (sans-IO), :mod:`._core` the migration state machine
(sans-IO: sequence numbers, acknowledgements, replay, switch points), :mod:`._stream`
runs it on asyncio conns behind a plain ``StreamReader``/``StreamWriter`` (:mod:`._path`:
one conn's socket options and half-close; :mod:`._errors`: a close the peer never
confirmed). The upgrade
itself (RTT over the relay, the timed background race) is the client's
(``rdv_core/client/_upgrade.py``).
"""

from __future__ import annotations

from rdv_core.faststart._core import RELAY, MigrationCore
from rdv_core.faststart._errors import UnconfirmedDataError
from rdv_core.faststart._frames import Frame, FrameParser, Kind
from rdv_core.faststart._path import Path
from rdv_core.faststart._stream import MigratingStream

__all__ = [
    "RELAY",
    "Frame",
    "FrameParser",
    "Kind",
    "MigratingStream",
    "MigrationCore",
    "Path",
    "UnconfirmedDataError",
]
