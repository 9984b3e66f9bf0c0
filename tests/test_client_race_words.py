"""The race's reasons are said in a user's words, not in the wire's (real server, real peers).

When a direct conn won, the dialer's relay ended with ``went direct: told the server
OTHER``: ``OTHER`` is a protocol line (docs/PROTOCOL.md section 1, step 5), not a word a
user of ``rdv dial -v`` or the race screen knows.
"""

from __future__ import annotations

import re

from rdv_core.events import Discarded, Event, RelayReady

from tests.race_support import client, of, pair

#: rdv/1's command lines: none belongs in a reason shown to a user.
WIRE_WORDS = re.compile(r"\b(OTHER|CONTINUE|DIAL|ACCEPT)\b")


async def test_a_direct_pick_says_what_became_of_the_relay(url: str) -> None:
    d_events: list[Event] = []
    a_events: list[Event] = []
    d, a = await pair(url, client(d_events), client(a_events), token="words")
    async with d, a:
        assert not d.is_relay
    relay = of(d_events, RelayReady)[0].candidate
    (discarded,) = [e for e in of(d_events, Discarded) if e.candidate == relay]
    assert discarded.reason == "a direct conn was picked: the server was told, and the relay closed"
    for event in of(d_events, Discarded) + of(a_events, Discarded):
        assert not WIRE_WORDS.search(event.reason), event
