"""One server's conns from the shared port P (docs/PROTOCOL.md 14.2, steps 2 and 3).

The main conn (reachability, RTT, TLS), then what rides it: ``/.rdv/probes`` (which probe
ports exist), ``/.rdv/observed`` (our public address, whether ``Upgrade`` arrived), then
every probe port; and the IPv6 conn to the same server. Each step writes its findings into
the :class:`~rdv_core.doctor._target.Target`; the samples go to the lists the caller gives.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from rdv_core.client._probe_http import HttpConn, ProbeHttpError
from rdv_core.client._server_conn import plain_refused, tls_reason
from rdv_core.doctor._report import Finding, Sample, not_measured
from rdv_core.doctor._target import Target, observe, sample, show_addr
from rdv_core.wire import Observed, ProtocolError, parse_directory
from rdv_core.wire._probe import PROBE_UPGRADE, PROBES_PATH

log = logging.getLogger("rdv.doctor")

Connect = Callable[[Target, str, int, int, bool], Awaitable[HttpConn]]
"""``connect(server, ip, port, local_port, tls)``: a conn kept open until the run ends."""


def in_words(exc: BaseException) -> str:
    """An OS error in words (``connection refused``), not asyncio's "Connect call failed"."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, ssl.SSLError):
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def server_main(
    server: Target,
    ip: str | None,
    port: int,
    connect: Connect,
    samples4: list[Sample],
    samples6: list[Sample],
    on_connect: Callable[[bool], None] | None = None,
) -> None:
    """The main conn from P to ``ip`` and every probe that rides it (steps 2 and 6);
    ``on_connect`` is told whether TCP connected, as soon as that is known."""
    if ip is None:
        # Neither family resolved: the name is the trouble ("the server has no IPv4 address
        # ([Errno -2] Name or service not known)" read as if a server had been found).
        server.tcp4 = not_measured(server.resolve_error or "the server has no address")
        return
    v6 = ":" in ip
    if v6 and not server.tcp4.measured:  # a failed IPv4 conn keeps its finding
        server.tcp4 = not_measured(
            server.no_v4 or "the server has no IPv4 address: measured over IPv6"
        )
    tls = server.parsed.tls
    try:
        conn = await connect(server, ip, server.parsed.port, port, tls)
    except (OSError, TimeoutError) as exc:
        if on_connect is not None:
            on_connect(isinstance(exc, ssl.SSLError))  # TLS failed after TCP connected
        reached = Finding(False, f"TCP to {show_addr(ip, server.parsed.port)}: {in_words(exc)}")
        if tls:
            server.tls = not_measured("no TCP")
        if isinstance(exc, ssl.SSLError):  # https:// to a plain server: the URL to use
            server.tls = Finding(False, tls_reason(server.parsed, exc))
            reached = Finding(True, "TCP connected (TLS failed)")
            # What the probes riding this conn (dial-back, Upgrade) say instead of
            # "server unreachable", which it was not.
            server.directory_reason = f"TLS with the server failed: {server.tls.reason}"
        server.set_reached(ip, reached)
        return
    if on_connect is not None:
        on_connect(True)
    server.main, server.main_ip = conn, ip
    server.rtts.append(conn.connect_ms)
    server.set_reached(ip, Finding(True, f"connected in {conn.connect_ms:.1f} ms"))
    if tls:
        server.tls = Finding(True, "TLS handshake completed")
    await directory(server, conn)
    observed: Observed | None = None
    try:
        if server.http.value is False:
            # Its conn is dead or holds our first GET unanswered: a second would only
            # wait out the same timeout (3 s more for the user) behind it.
            raise ProbeHttpError(server.http.reason)
        if server.tls.value is False:  # it refused plain HTTP and closed: nothing to ask
            raise ProbeHttpError(server.directory_reason)
        observed = await observe(conn, upgrade=True)
    except (ProbeHttpError, ProtocolError) as exc:
        server.upgrade = not_measured(f"no observed address: {exc}")
    else:
        arrived = observed.upgrade == PROBE_UPGRADE
        server.upgrade = Finding(
            arrived,
            "our Upgrade header arrived"
            if arrived
            else f"our Upgrade header arrived as {observed.upgrade!r}: a proxy or middlebox "
            "between us strips it, and rdv/1 needs it",
        )
    server.main_sample = sample(conn, observed)
    samples = samples6 if v6 else samples4
    samples.append(server.main_sample)
    if v6:
        server.observed6 = server.main_sample  # NAT66 from this conn (no fresh one)
    if server.directory is None:
        return
    await check_path(server, ip, connect)
    for probe_port in server.directory.probe_ports:
        if probe_port == server.parsed.port:
            continue
        await probe(server, ip, probe_port, port, connect, samples)


async def dual_stack(
    server: Target, port: int, connect: Connect, samples4: list[Sample], samples6: list[Sample]
) -> None:
    """The main conn over IPv4 and, once it connected, the IPv6 one (step 3); when TCP to
    the IPv4 address fails, the IPv6-only server's path instead (section 15.2), as the race's
    server conn falls back to IPv6: a server listening on ``[::]`` only, named by a name
    with both, gave no NAT finding at all. One after the other: both conns go from P to the
    same IPv6 address and port."""
    if server.v4 is None:  # neither family resolved: server_main says why
        await asyncio.gather(
            server_main(server, None, port, connect, samples4, samples6),
            server6(server, port, connect),
        )
        return
    connected: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def told(ok: bool) -> None:
        if not connected.done():
            connected.set_result(ok)

    main = asyncio.create_task(
        server_main(server, server.v4, port, connect, samples4, samples6, told)
    )
    main.add_done_callback(lambda _: told(True))  # ended before its connect: go on
    try:
        if await connected or server.v6 is None:
            await asyncio.gather(main, server6(server, port, connect))
            return
        await main
    finally:
        main.cancel()  # the run was cancelled while we waited (a no-op once it is done)
    log.info("%s: %s; measuring over IPv6", server.url, server.tcp4.reason)
    await server_main(server, server.v6, port, connect, samples4, samples6)


#: The doctor's words for a URL whose path the rdv server does not serve (the summary keys on
#: them).
NO_RDV_PATH: Final = "nothing serves rdv at this URL's path"


async def check_path(server: Target, ip: str, connect: Connect) -> None:
    """Does the server serve rdv at the URL's path? The doctor routes sit at the root whatever
    the prefix (section 15.1), so a URL without the server's ``--prefix`` measured fine, and
    ``rdv dial`` with it then failed on ``404``. A token under the path without the upgrade
    headers gets ``426`` from an rdv server whose prefix matches, ``404`` from one whose does
    not (section 3, rows 5 and 7), and never enters the lobby. On a fresh conn: the ``426``
    may close it."""
    path = server.parsed.request_path("rdv-doctor-path-check")
    try:
        conn = await connect(server, ip, server.parsed.port, 0, server.parsed.tls)
        status, _ = await conn.get(path)
    except (OSError, TimeoutError, ProbeHttpError) as exc:
        log.info("path check %s: %s", path, exc)
        return
    if status == 404:  # an answer, but rdv is not there: rdv dial with this URL fails
        server.http = Finding(
            False,
            f"{NO_RDV_PATH} (404 to GET {path}, where rdv answers 426): check it "
            "(rdv serve --prefix)",
        )


async def directory(server: Target, conn: HttpConn) -> None:
    """``GET /.rdv/probes`` on the main conn: the probe ports, or why there are none."""
    try:
        status, body = await conn.get(PROBES_PATH)
        server.http = Finding(True, f"answered {status} to GET {PROBES_PATH}")
        refused = plain_refused(server.parsed, status, body.decode("utf-8", "replace"))
        if refused is not None:  # a TLS server's 400 to plain HTTP: the URL to use
            server.tls = Finding(False, str(refused))
            server.http = Finding(False, str(refused))  # not an answer to our question
            server.directory_reason = str(refused)
            return
        if status != 200:
            server.directory_reason, is_rdv = no_directory(status, body)
            if not is_rdv:  # an answer, but not from an rdv server: nothing to measure here
                server.http = Finding(False, server.directory_reason)
            return
        server.directory = parse_directory(body)
    except ProtocolError as exc:  # it answered, but not with what we asked for
        server.http = Finding(True, f"answered GET {PROBES_PATH} with {exc}")
        server.directory_reason = f"{PROBES_PATH}: {exc}"
    except ProbeHttpError as exc:  # silent, or the conn failed before any answer
        server.http = Finding(False, str(exc))
        server.directory_reason = f"{PROBES_PATH}: {exc}"


#: The doctor's words for an answer that no rdv server gives (the summary keys on them).
NOT_RDV: Final = "it is not an rdv server"


def no_directory(status: int, body: bytes) -> tuple[str, bool]:
    """Why a non-200 answer to ``/.rdv/probes`` gives no directory, and whether an rdv server
    gave it.

    An rdv/1 server without the doctor routes answers a path at its root as a token without
    ``Connection: upgrade``: ``426 invalid rdv upgrade`` (docs/PROTOCOL.md section 3, row 7);
    under a ``--prefix``, Go's ``404 page not found`` (row 5). Our server's probe limit is
    ``429`` and a shut-down one ``503 rdv is closed`` (sections 15.1 and 3). Anything else
    (a plain web server's 404 page, a redirect) came from something that is not rdv: calling
    it "an rdv/1 server without them" sent a user looking for routes on a web server.
    """
    text = body.decode("utf-8", "replace").strip()
    where = f"the server answered {status} to {PROBES_PATH}"
    if (status == 426 and text.startswith("invalid rdv upgrade")) or (
        status == 404 and text == "404 page not found"
    ):
        return (
            f"{where}: it has no doctor routes (an rdv/1 server without them, e.g. the Go one)",
            True,
        )
    if status == 429:
        return f"{where}: it limits probes from this address; run again in a few seconds", True
    if status == 503 and text == "rdv is closed":
        return f"{where}: the rdv server is shutting down", True
    return (
        f"{NOT_RDV} (it answered {status} to GET {PROBES_PATH}, where an rdv server answers "
        "200, or 426 without the doctor routes): is that port the rdv server's?",
        False,
    )


async def probe(
    server: Target, ip: str, probe_port: int, local: int, connect: Connect, samples: list[Sample]
) -> None:
    """One probe port's observed address (mapping); a failure is only logged."""
    try:
        conn = await connect(server, ip, probe_port, local, False)
        server.rtts.append(conn.connect_ms)
        observed = await observe(conn)
    except (OSError, TimeoutError, ProbeHttpError, ProtocolError) as exc:
        log.info("probe port %s: %s", show_addr(ip, probe_port), exc)
        return
    samples.append(sample(conn, observed))


async def server6(server: Target, port: int, connect: Connect) -> None:
    """The IPv6 conn from P to a server that also has IPv4 (step 3)."""
    if server.v6 is None:
        server.tcp6 = not_measured("the server has no IPv6 address")
        return
    try:
        # From P too: the IPv6 dial-back (filtering6) must find our IPv6 listener.
        conn = await connect(server, server.v6, server.parsed.port, port, server.parsed.tls)
    except (OSError, TimeoutError) as exc:
        server.tcp6 = Finding(
            False, f"TCP to {show_addr(server.v6, server.parsed.port)}: {in_words(exc)}"
        )
        return
    server.rtts.append(conn.connect_ms)
    server.tcp6 = Finding(True, f"connected in {conn.connect_ms:.1f} ms")
    if server.v4 is None and server.parsed.tls:
        server.tls = Finding(True, "TLS handshake completed")
    try:
        observed = await observe(conn)
    except (ProbeHttpError, ProtocolError):
        observed = None
    server.observed6 = sample(conn, observed)
    server.main6 = conn
