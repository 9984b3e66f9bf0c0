"""The doctor's probe routes in an aiohttp application (docs/PROTOCOL.md section 15.1).

:func:`mount_probes` adds ``GET /.rdv/observed``, ``/.rdv/probes`` and ``/.rdv/dial-back`` at
the application's root. aiohttp resolves routes in the order they were added, and
:func:`~rdv_core.server._aiohttp.mount` under an empty prefix catches every path, so the probe
routes must be added first: ``mount(app, server, prefix, probes=service)`` does that.
"""

from __future__ import annotations

from aiohttp import web

from rdv_core.server._observed import transport_peer_addr
from rdv_core.server._probe_ports import _local_addr
from rdv_core.server._probes import ProbeService
from rdv_core.wire import PROBE_PATHS


def mount_probes(app: web.Application, service: ProbeService) -> None:
    """Serve the probe routes of ``service`` in ``app`` (before any catch-all route)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        remote = transport_peer_addr(transport) if transport is not None else None
        local = _local_addr(transport) if transport is not None else None

        def joined(name: str) -> str | None:
            # Every line of a list header, as the native front reads it (Head.get_joined).
            values = request.headers.getall(name, [])
            return ", ".join(values) if values else None

        answer = await service.answer(request.path, request.query_string, joined, remote, local)
        content_type, _, charset = answer.content_type.partition("; charset=")
        response = web.Response(
            status=answer.status,
            text=answer.body,
            content_type=content_type,
            charset=charset or None,
            headers=dict(answer.headers),
        )
        if request.path == "/.rdv/dial-back":
            response.force_close()
        return response

    for path in sorted(PROBE_PATHS):
        app.router.add_get(path, handle)
