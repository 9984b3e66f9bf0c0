"""The native front over TLS: the lobby, the 101s and the relay all work inside TLS."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.server_support import EOF, Env, RawClient, rdv_request


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography is a project dependency)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[Path, Path]:
    return make_cert(tmp_path)


async def _tls_client(port: int, cafile: Path, data: bytes) -> RawClient:
    context = ssl.create_default_context(cafile=str(cafile))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    writer.write(data)
    return RawClient(reader, writer)


async def test_tls_pair_relays_and_shuts_down(cert_files: tuple[Path, Path]) -> None:
    cert, key = cert_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RdvServer()
    front = await start_native(server, ssl=context, prefix="/rdv")
    try:
        assert front.url.startswith("https://127.0.0.1:")
        bad = await _tls_client(front.port, cert, b"GET /rdv/x HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await bad.read_response()
        assert (status, body) == (426, b"invalid rdv upgrade: requires connection upgrade\n")
        accepter = await _tls_client(front.port, cert, rdv_request("ACCEPT", "/rdv/t"))
        waiting = await _tls_client(front.port, cert, rdv_request("ACCEPT", "/rdv/other"))
        await Env("native", server, front.port, "/rdv").wait_lobby(2)
        dialer = await _tls_client(front.port, cert, rdv_request("DIAL", "/rdv/t"))
        assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")
        assert (await accepter.read_head()).startswith(b"HTTP/1.1 101 ")
        payload = os.urandom(4 << 20)
        dialer.send(b"CONTINUE\n" + payload)
        accepter.send(payload[::-1])
        got_a = await accepter.read_exactly(9 + len(payload), within=20)
        got_d = await dialer.read_exactly(len(payload), within=20)
        assert got_a == b"CONTINUE\n" + payload
        assert hashlib.sha256(got_d).digest() == hashlib.sha256(payload[::-1]).digest()
        await server.close()
        assert (await waiting.read_until_eof()).endswith(b"rdv server shutting down, try again")
        assert (await dialer.read_for(2.0)).endswith(EOF.encode())
        assert (await accepter.read_for(2.0)).endswith(EOF.encode())
    finally:
        await server.close()
        await front.close()
