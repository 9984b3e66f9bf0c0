"""The relay's part in the race (docs/PROTOCOL.md sections 1, 7 and 11), one function per side.

The dialer's relay is on offer from the ``101`` on and the server sends nothing on it
before our pick, so all the dialer does is notice that it died. The accepter reads one
command from the server on it: ``CONTINUE`` means the dialer picked the relay; EOF
means the dialer went direct (or is gone). Either way each ends with an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rdv_core.client._failures import classify
from rdv_core.client._link import Link, PeerClosed, read_line
from rdv_core.events import CandidateFailed, Clock, Discarded, Event, FailReason
from rdv_core.wire import Continue, ProtocolError, parse_command

#: Why the server closed the accepter's relay before any ``CONTINUE``: it does so after the
#: dialer's ``OTHER``, and also when the dialer leaves or the server stops; the accepter
#: cannot tell which (docs/PROTOCOL.md section 11, "The accepter and the relay").
RELAY_CLOSED: Final = "the server closed the relay: the dialer went direct or left"
#: The dialer's relay once a direct conn was picked: it writes ``OTHER`` (the server counts
#: the pair as direct) and closes it. Said in words, not in the wire's (it read "went
#: direct: told the server OTHER").
RELAY_LET_GO: Final = "a direct conn was picked: the server was told, and the relay closed"


async def watch_dialer_relay(relay: Link, emit: Callable[[Event], None], clock: Clock) -> str:
    """Dialer: wait until the relay dies before the pick; close it; why it died."""
    try:
        data = await relay.reader.read(1)
    except OSError as exc:
        reason, code = classify(exc)
        detail = str(exc)
    else:
        reason, code = ("eof", None) if not data else ("protocol", None)
        detail = "the server closed the relay" if not data else "server sent bytes before our pick"
    relay.close()
    emit(CandidateFailed(clock(), relay.candidate, reason, code, detail))
    return reason


async def accepter_relay_command(
    relay: Link, emit: Callable[[Event], None], clock: Clock
) -> tuple[bool, FailReason | None]:
    """Accepter: True when ``CONTINUE`` came (the relay won); else it is closed and why.

    Returns:
        (True, None) for ``CONTINUE``; (False, None) when the server closed the relay
        (the dialer went direct); (False, reason) when it failed.
    """
    try:
        command = parse_command(await read_line(relay.reader))
    except PeerClosed:
        relay.close()
        emit(Discarded(clock(), relay.candidate, RELAY_CLOSED))
        return False, None
    except (OSError, ProtocolError) as exc:
        reason, code = classify(exc)
        relay.close()
        emit(CandidateFailed(clock(), relay.candidate, reason, code, str(exc)))
        return False, reason
    if isinstance(command, Continue):
        return True, None
    relay.close()
    emit(CandidateFailed(clock(), relay.candidate, "protocol", None, "OTHER from the server"))
    return False, "protocol"
