"""``rdv serve --tls-cert`` with a certificate out of its validity says so at start.

OpenSSL loads an expired certificate without a word; the server answered ``/healthz`` to
nobody, since every client's handshake failed with ``certificate has expired``.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import signal
from pathlib import Path

import pytest

from tests.test_server_cli import rdv_serve


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
