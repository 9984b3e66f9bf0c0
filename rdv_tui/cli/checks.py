"""Checks on what a person types, shared by the CLI and the app (before any traffic).

``rdv_core`` accepts any well-formed code (the library may be driven by programs that
choose their own); a person who types ``apple river`` or ``x-y`` has made a mistake,
and waiting forever on nameplate ``apple`` or keying the encryption with one letter
helps nobody (issue 16). Standard library only at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rdv_core.session import Code

MIN_SECRET_LETTERS = 6
"""The shortest secret a person may type: two of the shortest list words (``fig-owl``)."""


def check_code(text: str) -> Code:
    """Parse a session code typed by a person, stricter than :func:`rdv_core.session.parse_code`.

    Raises:
        CodeError: the code is malformed, has no number before its words (``apple
            river``), or its secret is too short to protect anything (``7-y``).
    """
    from rdv_core.session import CodeError, parse_code

    code = parse_code(text)
    if not code.nameplate.isdigit():
        raise CodeError(
            f"{text.strip()!r} is not a session code: it starts with the number that "
            "rdv send or the app printed, e.g. 7-tulip-orbit"
        )
    if sum(c.isalnum() for c in code.secret) < MIN_SECRET_LETTERS:
        raise CodeError(
            f"the secret words of {text.strip()!r} are too short to protect the session: "
            "use two words or more, e.g. 7-tulip-orbit"
        )
    return code


LOCAL_HOSTS = ("localhost", "localhost.")


def is_local(url: str) -> bool:
    """Whether the server of ``url`` runs on this machine (a loopback or unspecified host).

    Two peers that meet there are on this machine too, so they should race over
    loopback: this machine's public and private addresses only race itself, and a peer
    with the default spaces refuses loopback conns (issue 16's one-machine trap).
    """
    import ipaddress
    import urllib.parse

    try:
        host = urllib.parse.urlsplit(url.strip()).hostname or ""
    except ValueError:
        return False
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # `rdv serve` listening everywhere prints http://0.0.0.0:PORT, and a client given it
    # connects to this machine: the kernel routes the unspecified address to loopback.
    return address.is_loopback or address.is_unspecified


def warns_of_observed(url: str) -> bool:
    """Whether a session through the server at ``url`` prints the observed-address warning
    ("p2p across NATs will likely fail"): not for a server on this machine, which sees us
    at a loopback address as it should (it was the first line of the README's first try,
    two terminals on one machine). The event itself stays, for ``-v`` and the library.
    """
    return not is_local(url)


def spaces_for(server: str, spaces: str | None) -> str:
    """The ``--spaces`` value to use: the one given, else ``loopback`` for a server on
    this machine and ``default`` otherwise."""
    if spaces is not None:
        return spaces
    return "loopback" if is_local(server) else "default"


def loopback_hint(server: str) -> str:
    """`` --spaces loopback`` for the command shown for the other side of a local server."""
    return " --spaces loopback" if is_local(server) else ""
