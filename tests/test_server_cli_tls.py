"""``rdv serve --tls-cert`` with a certificate out of its validity says so at start.

OpenSSL loads an expired certificate without a word; the server answered ``/healthz`` to
nobody, since every client's handshake failed with ``certificate has expired``.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import signal
import ssl
from pathlib import Path

import pytest

from tests.test_server_cli import Served, rdv_serve


def make_cert(directory: Path, not_before: datetime.datetime, not_after: datetime.datetime) -> None:
    """``cert.pem`` and ``key.pem`` in ``directory``: a self-signed certificate for these dates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("not_before", "not_after", "warning"),
    [
        (
            NOW - 10 * DAY,
            NOW - DAY,
            r"WARNING rdv\.server: --tls-cert \S+cert\.pem expired on \d{4}-\d\d-\d\d \d\d:\d\d "
            r"UTC: clients will refuse it \(certificate has expired\)",
        ),
        (
            NOW + DAY,
            NOW + 10 * DAY,
            r"WARNING rdv\.server: --tls-cert \S+cert\.pem is not valid before .* UTC: clients "
            r"will refuse it until then \(check this machine's clock\)",
        ),
        (NOW - DAY, NOW + DAY, None),
    ],
    ids=["expired", "not-yet-valid", "valid"],
)
async def test_a_certificate_out_of_its_dates_is_reported_at_start(
    tmp_path: Path,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    warning: str | None,
) -> None:
    make_cert(tmp_path, not_before, not_after)
    args = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    async with rdv_serve(args) as served:
        assert served.url.startswith("https://")
        await asyncio.sleep(0.5)  # the start lines are out; the rest comes with the stop
        assert await served.stop(signal.SIGTERM) == 0
    text = "\n".join(served.stderr_lines)
    if warning is None:
        assert "WARNING" not in text, text
    else:
        assert re.search(warning, text), text


async def _served_serial(port: int, cafile: Path) -> int:
    """The serial number of the certificate a TLS handshake with the server gets."""
    from cryptography import x509

    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
    return int(x509.load_der_x509_certificate(der).serial_number)


def _serial(path: Path) -> int:
    from cryptography import x509

    return int(x509.load_pem_x509_certificate(path.read_bytes()).serial_number)


async def _next_line(served: Served, pattern: str) -> str:
    """Read stderr lines until one matches ``pattern``."""
    stderr = served.process.stderr
    assert stderr is not None
    async with asyncio.timeout(20):
        while True:
            line = (await stderr.readline()).decode()
            assert line, "rdv serve ended"
            if re.search(pattern, line):
                return line


async def test_sigusr1_takes_a_renewed_certificate_and_keeps_open_conns(tmp_path: Path) -> None:
    """A renewal used to need a restart (resetting every pair); SIGUSR1 used to kill it."""
    live, first, second, stray = (tmp_path / name for name in ("live", "a", "b", "c"))
    for folder in (live, first, second, stray):
        folder.mkdir()
    for folder in (first, second, stray):
        make_cert(folder, NOW - DAY, NOW + DAY)
    for name in ("cert.pem", "key.pem"):
        (live / name).write_bytes((first / name).read_bytes())
    cert, key = live / "cert.pem", live / "key.pem"
    async with rdv_serve(["--tls-cert", str(cert), "--tls-key", str(key)]) as served:
        lobby = await asyncio.open_connection("127.0.0.1", served.port, ssl=_trusting())
        assert await _served_serial(served.port, cert) == _serial(first / "cert.pem")
        # Half renewed: a new certificate, the old key. Refused, the old pair stays in use.
        cert.write_bytes((second / "cert.pem").read_bytes())
        served.process.send_signal(signal.SIGUSR1)
        line = await _next_line(served, "not reloading")
        assert "is not the key of the certificate" in line, line
        assert await _served_serial(served.port, first / "cert.pem") == _serial(first / "cert.pem")
        key.write_bytes((second / "key.pem").read_bytes())
        served.process.send_signal(signal.SIGUSR1)
        assert "reloaded --tls-cert" in await _next_line(served, "reloaded|not reloading")
        assert await _served_serial(served.port, cert) == _serial(second / "cert.pem")
        # The conn opened before the reload is still served.
        reader, writer = lobby
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200")
        writer.close()
        assert await served.stop(signal.SIGTERM) == 0


def _trusting() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_sigusr1_without_tls_is_not_the_end() -> None:
    async with rdv_serve([]) as served:
        served.process.send_signal(signal.SIGUSR1)
        assert "nothing to reload" in await _next_line(served, "SIGUSR1")
        assert await served.stop(signal.SIGTERM) == 0
