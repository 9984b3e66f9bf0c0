"""The wrong port: another service (SSH, SMTP) where the rdv server was expected.

The client read a banner (``SSH-2.0-...``, ``220 ... ESMTP``) as the first line of an HTTP
head and waited for the rest, so ``rdv dial http://mail:25`` sat until the other service gave
up (minutes for an SMTP server that answers ``500`` to each line and keeps the conn), then
said ``the server closed the connection inside its response``; the doctor said ``it answered
nothing``. A response's first five bytes are now checked as they arrive: not ``HTTP/``, and
the client and the doctor say what answered. Real listeners on loopback; the CLI as real
processes, with the TLS front's plain 400 (tests/test_front_plain_on_tls.py) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from rdv_core.doctor import run_doctor, summary
from rdv_core.errors import RdvProtocolError
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.balancer_support import binary, free_port, missing_binary
from tests.proc_support import kill_left
from tests.race_support import client
from tests.test_readme_examples import REPO
from tests.test_server_tls import make_cert

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SSH_BANNER = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"


async def _ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(SSH_BANNER)  # sshd speaks first, then waits for the client's banner
    with contextlib.suppress(OSError):
        await reader.read()  # held open until the client goes
    writer.close()


async def _smtp_after_a_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # An SMTP server whose banner came and went (or a line service without one): it answers
    # each line with an error and keeps the conn open for its own long timeout.
    with contextlib.suppress(OSError):
        while await reader.readline():
            writer.write(b"500 5.5.2 Error: bad syntax\r\n")
    writer.close()


@contextlib.asynccontextmanager
async def listening(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("handler", "said"),
    [(_ssh, "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13"), (_smtp_after_a_line, "500 5.5.2 Error")],
)
async def test_the_client_says_what_answered(handler: Handler, said: str) -> None:
    async with listening(handler) as port:
        with pytest.raises(RdvProtocolError) as caught:
            # 60 s: far beyond the answer (at once), far below the hang it was.
            await asyncio.wait_for(client().dial(f"http://127.0.0.1:{port}", "tok"), 60)
    text = str(caught.value)
    assert text.startswith("bad response from the server: it does not speak HTTP (it said '")
    assert said in text and text.endswith("): is that port the rdv server's?"), text


async def test_the_doctor_says_what_answered() -> None:
    async with listening(_ssh) as port:
        report = await run_doctor([f"http://127.0.0.1:{port}"])
    assert summary(report) == (
        "TCP reached the server, but nothing was measured: GET /.rdv/probes: it does not speak "
        "HTTP (it said 'SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13'): is that port the rdv server's?"
    )  # the question ends the sentence (it read "server's?; nothing was measured.")
    assert not report.answered


async def _rdv(*args: str) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rdv_tui", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_rdv_dial_to_an_ssh_port_exits_with_the_banner() -> None:
    async with listening(_ssh) as port:
        code, out = await _rdv("dial", f"http://127.0.0.1:{port}", "tok")
    assert code != 0
    assert "it does not speak HTTP (it said 'SSH-2.0-OpenSSH_9.6p1" in out, out
    assert "Traceback" not in out


async def test_rdv_dial_and_doctor_over_http_to_the_tls_port(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0, ssl=context)
    url = f"http://127.0.0.1:{front.port}"
    try:
        dial_code, dial_out = await _rdv("dial", url, "tok")
        doctor_code, doctor_out = await _rdv("doctor", url)
    finally:
        await front.close()
        await server.close()
    said = f"the rdv server {url} speaks TLS (it refused plain HTTP): use https://127.0.0.1:"
    assert dial_code != 0 and said in dial_out, dial_out
    # 1: nothing was measured (README, rdv doctor's exit codes).
    assert doctor_code == 1 and said in " ".join(doctor_out.split()), doctor_out


H2C_CONF = """pid {dir}/nginx.pid;
master_process off;
error_log stderr;
events {{}}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{ listen 127.0.0.1:{port} http2; return 200 "ok\\n"; }}
}}
"""


async def test_an_http2_only_port_is_named(tmp_path: Path) -> None:
    # nginx's cleartext HTTP/2 port (prior knowledge only) sends its SETTINGS frame, then
    # GOAWAY: the client said "closed the connection inside its response".
    reason = missing_binary("nginx")
    if reason is not None:
        pytest.skip(reason)
    port = free_port()
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(H2C_CONF.format(dir=tmp_path, port=port))
    nginx = await asyncio.create_subprocess_exec(
        binary("nginx") or "nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
        "-g", "daemon off;", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(15):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        with pytest.raises(RdvProtocolError) as caught:
            await asyncio.wait_for(client().dial(f"http://127.0.0.1:{port}", "tok"), 60)
    finally:
        await kill_left(nginx)
    assert str(caught.value) == (
        "bad response from the server: it does not speak HTTP/1.1 (it answered with an HTTP/2 "
        "frame: an HTTP/2-only service, such as gRPC): is that port the rdv server's?"
    )
