"""Checks on what a person types, shared by the CLI and the app (before any traffic).

``rdv_core`` accepts any well-formed code (the library may be driven by programs that
choose their own); a person who types ``apple river`` or ``x-y`` has made a mistake,
and waiting forever on nameplate ``apple`` or keying the encryption with one letter
helps nobody (issue 16). Standard library only at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

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


#: Where this machine maps names to addresses before any DNS (``hosts: files dns``).
HOSTS_FILE = "/etc/hosts"


def is_local(url: str, hosts_file: str = HOSTS_FILE) -> bool:
    """Whether the server of ``url`` runs on this machine: its host is ``localhost`` (or
    a ``.localhost`` name, RFC 6761 section 6.3), a loopback or unspecified address in any
    form the resolver takes (``127.1``, ``[::ffff:127.0.0.1]``), or a name that
    ``hosts_file`` maps to such addresses only (``127.0.0.1 vm``: the machine's own name).

    Two peers that meet there are on this machine too, so they should race over
    loopback: this machine's public and private addresses only race itself, and a peer
    with the default spaces refuses loopback conns (issue 16's one-machine trap). No DNS
    is asked (the app calls this as the user types a URL): a name only DNS maps to
    loopback is taken for another machine.
    """
    import urllib.parse

    try:
        host = (urllib.parse.urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    literal = _address(host)
    if literal is not None:
        return _here(literal)
    mapped = _hosts_addresses(host, hosts_file)
    return bool(mapped) and all(_here(address) for address in mapped)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    """``text`` as an IP address, in the forms ``getaddrinfo`` takes for one, or None."""
    import ipaddress
    import re
    import socket

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    # inet_aton's shorthand, which the resolver (and so the client's connect) takes too:
    # 127.1, 0x7f.0.0.1, 2130706433.
    if not re.fullmatch(r"[0-9a-fx.]+", text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _here(address: IPv4Address | IPv6Address) -> bool:
    # `rdv serve` listening everywhere prints http://0.0.0.0:PORT, and a client given it
    # connects to this machine: the kernel routes the unspecified address to loopback.
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 (3.11 says not loopback)
    if mapped is not None:
        address = mapped
    return address.is_loopback or address.is_unspecified


def _hosts_addresses(host: str, hosts_file: str) -> list[IPv4Address | IPv6Address]:
    """The addresses ``hosts_file`` gives ``host`` (lines ``ADDRESS NAME [ALIAS...]``)."""
    import ipaddress

    try:
        with open(hosts_file, encoding="utf-8", errors="replace") as lines:
            text = lines.read(1 << 20)
    except OSError:
        return []
    found: list[IPv4Address | IPv6Address] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or host not in (name.rstrip(".").lower() for name in fields[1:]):
            continue
        try:
            found.append(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
    return found


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


def check_server_url(url: str, source: str) -> None:
    """Check a server URL before any traffic, naming where it came from when the user
    did not type it just now (``RDV_SERVER``, the config file's path).

    Raises:
        ValueError: the URL is no rdv server URL (the message names its source).
    """
    from rdv_core.wire import parse_server_url

    try:
        parse_server_url(url)
    except ValueError as exc:
        if source == "--server":
            raise
        # "rdv server URL must be http:// or https://, got 'ftp://x'" with no --server
        # given left the user looking for a URL they never typed.
        raise ValueError(f"{source}: {exc}") from None


def no_terminal(command: str) -> str | None:
    """Why the app cannot run here, or None: it reads keys from stdin and draws on
    stderr (Textual's driver), so both must be a terminal.

    Without one, ``rdv < /dev/null`` (a script, a cron job) drew the app's escape
    sequences into stderr and waited forever for keys that could never come.
    """
    import sys

    missing = [
        name
        for name, stream in (("stdin", sys.stdin), ("stderr", sys.stderr))
        if stream is None or not stream.isatty()
    ]
    if not missing:
        return None
    return (
        f"{command}: the app needs a terminal, and {' and '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not one; without a terminal use the "
        "headless commands (rdv send, rdv receive, rdv dial, rdv serve: rdv --help)"
    )
