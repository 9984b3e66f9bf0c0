"""Sessions end to end through our rdv server and client, on loopback: p2p and relay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rdv_core.client._client import Client
from rdv_core.events import Event, FileCompleted, SessionEstablished
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.session import (
    CodeMismatch,
    Session,
    SessionError,
    connect_session,
    describe_path,
    generate_code,
)
from rdv_core.wire import AddrSpace

from tests.session_support import accept_all, file_digest, make_file

LOOPBACK = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6


async def _pair(
    url: str,
    code_send: str,
    code_recv: str,
    spaces: AddrSpace,
    dl: Path,
    ev_a: list[Event],
    ev_b: list[Event],
) -> tuple[Session, Session]:
    sender, receiver = await asyncio.gather(
        connect_session(
            url, code_send, "send", client=Client(spaces=spaces, timeout=20), on_event=ev_a.append
        ),
        connect_session(
            url,
            code_recv,
            "receive",
            client=Client(spaces=spaces, timeout=20),
            on_event=ev_b.append,
            on_offer=accept_all,
            download_dir=dl,
        ),
    )
    return sender, receiver


@pytest.mark.parametrize("path", ["p2p", "relay"])
async def test_files_and_folder_through_rdv(url: str, tmp_path: Path, path: str) -> None:
    spaces = LOOPBACK if path == "p2p" else AddrSpace.NONE
    src = tmp_path / "src"
    digests = {
        "notes.txt": make_file(src / "notes.txt", 12_345, 1),
        "photos/a.jpg": make_file(src / "photos" / "a.jpg", 2_000_000, 2),
        "photos/raw/b.dng": make_file(src / "photos" / "raw" / "b.dng", 700_000, 3),
    }
    dl = tmp_path / "dl"
    dl.mkdir()
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    code = generate_code()
    a, b = await _pair(url, code, code, spaces, dl, ev_a, ev_b)
    try:
        assert a.is_relay == b.is_relay == (path == "relay")
        assert a.conn is not None and describe_path(a.conn).startswith(path)
        await a.send_chat("hi")
        results = await a.send_paths([src / "notes.txt", src / "photos"])
    finally:
        await a.close()
        await b.close()
    assert all(r.ok for r in results)
    for name, digest in digests.items():
        assert file_digest(dl / name) == digest
    assert {e.name for e in ev_b if isinstance(e, FileCompleted)} == set(digests)
    established = [e for e in ev_a if isinstance(e, SessionEstablished)]
    assert established[0].is_relay == (path == "relay")
    # Events never carry the code.
    secret = code.split("-", 1)[1]
    assert not any(secret in str(e.to_json()) for e in ev_a + ev_b)


@pytest.mark.parametrize("path", ["p2p", "relay"])
async def test_wrong_code_through_rdv(url: str, tmp_path: Path, path: str) -> None:
    spaces = LOOPBACK if path == "p2p" else AddrSpace.NONE
    results = await asyncio.gather(
        connect_session(url, "42-otter-quill", "send", client=Client(spaces=spaces)),
        connect_session(
            url,
            "42-otter-quilt",
            "receive",
            client=Client(spaces=spaces),
            download_dir=tmp_path,
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, CodeMismatch) for r in results), results


async def test_resume_through_relay_after_cut(url: str, tmp_path: Path) -> None:
    size = 8 << 20
    digest = make_file(tmp_path / "disk.img", size)
    dl = tmp_path / "dl"
    dl.mkdir()
    code = "77-kiwi-lava"
    ev_b: list[Event] = []
    a, b = await _pair(url, code, code, AddrSpace.NONE, dl, [], ev_b)

    def cut_at_first_progress(event: Event) -> None:
        ev_b.append(event)
        if event.type == "FileProgress" and b.conn is not None:
            b.conn.writer.transport.abort()  # the connection breaks mid-file

    b._events.callback = cut_at_first_progress
    with pytest.raises(SessionError):
        await a.send_paths([tmp_path / "disk.img"])
    await a.close()
    await b.close()
    held = (dl / "disk.img.rdvpart").stat().st_size
    assert 0 < held < size

    a, b = await _pair(url, code, code, AddrSpace.NONE, dl, [], [])
    try:
        results = await a.send_paths([tmp_path / "disk.img"])
    finally:
        await a.close()
        await b.close()
    assert results[0].resumed_from == held
    assert file_digest(dl / "disk.img") == digest


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_files_through_a_tls_relay(tmp_path: Path, tls_cert: tuple[Path, Path]) -> None:
    """An https server: the session runs over TLS streams (the generic channel)."""
    import ssl

    from rdv_core.session._channel import StreamChannel

    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    server = RdvServer()
    front = await start_native(server, ssl=server_ctx)
    digest = make_file(tmp_path / "secret.bin", 3_000_000)
    dl = tmp_path / "dl"
    dl.mkdir()
    try:
        url = front.url.replace("0.0.0.0", "127.0.0.1")
        a, b = await asyncio.gather(
            connect_session(
                url, "5-fig-owl", "send",
                client=Client(spaces=AddrSpace.NONE, ssl_context=client_ctx, timeout=20),
            ),
            connect_session(
                url, "5-fig-owl", "receive",
                client=Client(spaces=AddrSpace.NONE, ssl_context=client_ctx, timeout=20),
                on_offer=accept_all, download_dir=dl,
            ),
        )  # fmt: skip
        try:
            assert a.is_relay and isinstance(a._channel, StreamChannel)
            results = await a.send_paths([tmp_path / "secret.bin"])
        finally:
            await a.close()
            await b.close()
    finally:
        await front.close()
        await server.close()
    assert results[0].ok and file_digest(dl / "secret.bin") == digest
