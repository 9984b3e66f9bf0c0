"""Servers with the doctor's probe routes, on both fronts, for the doctor tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rdv_core.server import ProbePort, ProbeService, RdvServer, mount, start_native
from rdv_core.server import start_probe_ports as open_probe_ports


@dataclass
class ProbeEnv:
    """A running server with probe routes."""

    kind: str
    server: RdvServer
    service: ProbeService
    port: int
    probe_ports: list[int]
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def get(
        self, target: str, headers: Sequence[tuple[str, str]] = (), port: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One ``GET`` on a fresh conn (``Connection: close``)."""
        reader, writer = await asyncio.open_connection(self.host, port or self.port)
        lines = [f"GET {target} HTTP/1.1", "Host: x", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            async with asyncio.timeout(10):
                data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body

    async def get_json(self, target: str, **kwargs: Any) -> tuple[int, Any]:
        status, _, body = await self.get(target, **kwargs)
        return status, json.loads(body) if status == 200 else body.decode()


@asynccontextmanager
async def probe_server(
    kind: str,
    *,
    dial_back: bool = True,
    probe_ports: int = 1,
    probes: bool = True,
    host: str = "127.0.0.1",
) -> AsyncIterator[ProbeEnv]:
    """A server on ``host`` with ``probe_ports`` probe ports (``probes=False``: no routes)."""
    server = RdvServer()
    service = ProbeService(dial_back=dial_back, observe=server.observe)
    opened: list[ProbePort] = []
    if probes and probe_ports:
        opened = await open_probe_ports(service, host, [0] * probe_ports)
        service.probe_ports = tuple(p.port for p in opened)
    try:
        if kind == "native":
            front = await start_native(server, host, 0, probes=service if probes else None)
            try:
                yield ProbeEnv(kind, server, service, front.port, list(service.probe_ports), host)
            finally:
                await server.close()
                await front.close()
            return
        app = web.Application()
        mount(app, server, "", probes=service if probes else None)
        runner = web.AppRunner(app, shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            yield ProbeEnv(kind, server, service, port, list(service.probe_ports), host)
        finally:
            await server.close()
            await runner.cleanup()
    finally:
        for probe in opened:
            await probe.close()
