"""``rdv serve --tls-cert/--tls-key``: load the pair, naming the flag and file at fault.

Standard library only (``rdv serve`` never imports textual or rich).
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

__all__ = ["TlsFilesError", "tls_context", "validity_warning"]


class TlsFilesError(ValueError):
    """What is wrong with ``--tls-cert``/``--tls-key``, naming the flag and the file."""


def tls_context(cert: Path, key: Path, *, ask: bool = True) -> Any:
    """The server's TLS context, or :class:`TlsFilesError` saying which file is wrong.

    OpenSSL alone says ``[Errno 2] No such file or directory`` or ``[SSL] PEM lib`` without
    naming the file, and for an encrypted key without a terminal (a service) it says
    ``[Errno 22] Invalid argument``. Each file is checked on its own; the pass phrase of an
    encrypted key is asked on the terminal when there is one and ``ask`` (not once the
    server runs: the prompt would stop it).
    """
    import ssl

    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise TlsFilesError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_verify_locations(cafile=cert)
    except (ssl.SSLError, OSError, UnicodeError):
        raise TlsFilesError(f"--tls-cert {cert} holds no PEM certificate") from None

    asked = False

    def pass_phrase() -> str:
        nonlocal asked
        if not ask:
            raise TlsFilesError(
                f"--tls-key {key} is encrypted: its pass phrase cannot be asked while rdv serve "
                "runs; restart it, or give it an unencrypted key"
            )
        if not sys.stdin.isatty():
            raise TlsFilesError(
                f"--tls-key {key} is encrypted and there is no terminal to ask for its pass "
                "phrase; give rdv serve an unencrypted key (openssl pkey -in KEY -out PLAIN-KEY)"
            )
        import getpass

        asked = True
        return getpass.getpass(f"rdv serve: pass phrase for {key}: ")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=pass_phrase)
    except ssl.SSLError as exc:
        if asked:
            raise TlsFilesError(f"wrong pass phrase for --tls-key {key}") from None
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsFilesError(
                f"--tls-key {key} is not the key of the certificate in --tls-cert {cert}"
            ) from None
        raise TlsFilesError(f"--tls-key {key} holds no PEM private key") from None
    return context


def validity_warning(cert: Path, now: datetime.datetime | None = None) -> str | None:
    """What to tell the operator when the certificate in ``cert`` is out of its validity.

    OpenSSL loads an expired (or not yet valid) certificate without a word, and every client
    then fails its handshake with ``certificate has expired``: the server looked healthy
    while nobody could use it. Only the first certificate (the server's own) is checked.
    """
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return None  # tls_context loaded it: a form this parser does not take, say nothing
    now = now or datetime.datetime.now(datetime.UTC)
    if now > leaf.not_valid_after_utc:
        return (
            f"--tls-cert {cert} expired on {_when(leaf.not_valid_after_utc)}: clients will "
            "refuse it (certificate has expired); renew it and restart rdv serve"
        )
    if now < leaf.not_valid_before_utc:
        return (
            f"--tls-cert {cert} is not valid before {_when(leaf.not_valid_before_utc)}: "
            "clients will refuse it until then (check this machine's clock)"
        )
    return None


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
