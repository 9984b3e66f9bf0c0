"""``rdv serve``'s text logs under hostile input (issue 13, item 3): what clients control
(tokens, echoed header values) cannot forge lines or reach the terminal as escapes."""

from __future__ import annotations

import asyncio
import re

from tests.server_support import EOF, rdv_request
from tests.test_server_cli import rdv_serve

FORGED = "x\n12:00:00 INFO rdv.server: pair 99 token=forged\x1b[2J\x1b]0;owned\x07\u009b\u202e"


async def test_logs_escape_what_clients_control_and_show_the_limits() -> None:
    # One process for both checks (a process start costs seconds on a loaded machine).
    args = ["-v", "--max-lobby", "50", "--max-lobby-per-address", "1", "--lobby-timeout", "0"]
    async with rdv_serve(args) as served:
        env = served.env()
        accepter = await env.request("ACCEPT", FORGED)
        await asyncio.sleep(0.1)
        dialer = await env.request("DIAL", FORGED)  # matches: caps never refuse a match
        await dialer.read_head()
        await accepter.read_head()
        dialer.send(b"CONTINUE\n")
        assert await accepter.read_exactly(9) == b"CONTINUE\n"
        await dialer.close()
        assert await accepter.read_for(2.0) == EOF.encode()
        # A header value the server echoes in its error body (Latin-1 byte 0x9B: C1 CSI).
        bad = await env.raw(rdv_request("DIAL", "/tok", addrs="\x9b[2J"))
        assert (await bad.read_response())[0] == 400
        # The operator sees a cap that refuses, once.
        waiting = await env.request("ACCEPT", "one")
        await asyncio.sleep(0.1)
        refused = [await env.request("ACCEPT", f"more-{i}") for i in range(3)]
        for client in refused:
            assert (await client.read_until_eof()).startswith(b"HTTP/1.1 429 Too Many Requests")
        assert await waiting.read_for(0) == b""
        assert await served.stop() == 0
    text = "\n".join(served.stderr_lines)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), text
    assert not any("pair 99" in line and "forged" in line[:40] for line in served.stderr_lines)
    pair_lines = [line for line in served.stderr_lines if " pair 1 token=" in line]
    assert len(pair_lines) == 1 and "token=x%0A12:00:00%20INFO%20" in pair_lines[0]
    assert "%1B%5B2J" in pair_lines[0]
    assert any("Rejected" in line and "\\x9b[2J" in line for line in served.stderr_lines)
    assert "lobby timeout none, caps: 50 in all, 1 per address, 400 per network" in text
    warnings = [line for line in served.stderr_lines if "lobby cap reached" in line]
    assert len(warnings) == 1 and "(address, 127.0.0.1): refusing requests with 429" in warnings[0]
