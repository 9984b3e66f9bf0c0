"""``--listen HOST:PORT``: the address a server listens on (``rdv serve``, ``rdv tui``).

One parser for both commands. They differ in one rule only: ``rdv serve`` also takes
a bare ``PORT`` (every interface), ``rdv tui`` insists on the colon. Each command
words its own error message. Standard library only.
"""

from __future__ import annotations


def parse_listen(text: str, *, port_alone: bool) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` -> (host, port); ``""`` means every interface.

    Args:
        text: The option's value.
        port_alone: Also accept a bare ``PORT`` (as ``:PORT``).

    Raises:
        ValueError: what is wrong, in words a caller prints after its own option name:
            ``expected HOST:PORT``, ``port 70000 is out of range (0-65535)``, or ``an
            IPv6 address takes brackets, e.g. [::1]:8080``.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        if not port_alone:
            raise ValueError("expected HOST:PORT")
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        # An IPv4-mapped address (::ffff:127.0.0.1) is that IPv4 address: an IPv6 socket
        # cannot bind one (the server's are IPv6-only), and it said "Invalid argument".
        host = _unmapped(host[1:-1])
    elif ":" in host:
        # '::1:8080' is an IPv6 address too: taking it as [::1]:8080 was a guess, and
        # '::' alone read as "expected HOST:PORT" with no word of what to write.
        split = port_text.isdigit() and _is_ipv6(host)
        example = f"[{host}]:{port_text}" if split else f"[{text}]:8080"
        raise ValueError(f"an IPv6 address takes brackets, e.g. {example}")
    if not port_text.isascii() or not port_text.removeprefix("-").isdigit():
        raise ValueError("expected HOST:PORT")
    if not 0 <= int(port_text) <= 65535:
        # '127.0.0.1:-1' has the HOST:PORT form: say what is wrong with it.
        raise ValueError(f"port {port_text} is out of range (0-65535)")
    return host, int(port_text)


def _unmapped(host: str) -> str:
    import ipaddress

    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return host if mapped is None else str(mapped)


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def is_any_ipv6(host: str) -> bool:
    """``::`` however spelled (``0::0``): IPv6's every-interface address."""
    import ipaddress

    try:
        return ipaddress.IPv6Address(host).is_unspecified
    except ValueError:
        return False


def listen_error(exc: OSError, host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on, with what the operator can do about it.

    Python alone says ``[Errno 13] Permission denied`` for a low port or ``[Errno -2] Name
    or service not known`` for a host it cannot resolve, and leaves the rest to guess.
    """
    import errno
    import socket

    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host!r}: {exc.strerror or exc}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EACCES and 0 < port < 1024:
        return (
            f"{reason}: ports below 1024 need root or the CAP_NET_BIND_SERVICE capability "
            "(systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)"
        )
    if exc.errno == errno.EADDRINUSE:
        return f"{reason}: another process listens there (ss -ltnp 'sport = :{port}' names it)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{reason}: no interface of this machine has the address {host}"
    if exc.errno == errno.EINVAL and _link_local_without_zone(host):
        # Python says only "Invalid argument": the kernel needs to know which link.
        return f"{reason}: an IPv6 link-local address needs its interface, e.g. [{host}%eth0]"
    return reason


def _link_local_without_zone(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.IPv6Address(host).is_link_local
    except ValueError:
        return False  # not an IPv6 address, or one with a %zone already
