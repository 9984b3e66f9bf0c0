"""A server that takes the conn and says nothing, against one that answers anything.

docs/PROTOCOL.md section 15.3: a server's ``http`` finding. Before it, ``rdv doctor`` exited 0
("measured") for a server that answered nothing (a script's ``rdv doctor URL && ...`` went
on), the summary recognized that case by the text of an error message, and the doctor asked
such a server a second question on the conn that held the first one unanswered: 3 s more.
"""

from __future__ import annotations

import asyncio
import json

from rdv_core.doctor import Report, run_doctor, summary

from tests.doctor_support import probe_server
from tests.test_session_cli import rdv


async def test_a_silent_server_is_asked_once_and_the_doctor_exits_1() -> None:
    heard = bytearray()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(4096):
                heard.extend(chunk)  # never a byte back
        finally:
            writer.close()

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        code, out, err = await rdv("doctor", f"http://127.0.0.1:{port}", "--format", "json")
    finally:
        listener.close()
        await listener.wait_closed()
    assert code == 1, err
    report = Report.from_json(json.loads(out))
    server = report.servers[0]
    assert server.tcp4.value is True
    assert server.http.value is False and "no answer to GET" in server.http.reason
    assert not report.answered
    assert summary(report).startswith("TCP reached the server but it answered nothing (no answer")
    assert heard.count(b"GET /") == 1, bytes(heard)  # the conn held the first: no second


async def test_a_server_without_the_doctor_routes_answered() -> None:
    # Without the routes the server answers an error status (ours 426, as the Go one answers
    # a path it does not serve): an answer, measured as one.
    async with probe_server("native", probes=False) as env:
        report = await run_doctor([env.url])
    assert report.answered
    assert report.servers[0].http.value is True
    assert report.servers[0].http.reason == "answered 426 to GET /.rdv/probes"


async def test_an_older_report_without_http_reads_as_not_measured() -> None:
    async with probe_server("native") as env:
        report = await run_doctor([env.url])
    data = report.to_json()
    assert data["servers"][0]["http"]["value"] is True
    assert Report.from_json(data).to_json() == data
    del data["servers"][0]["http"]  # what the previous rdv's diagnosis frame carries
    older = Report.from_json(data).servers[0].http
    assert older.value is None and "older rdv" in older.reason
