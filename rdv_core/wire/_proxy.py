"""HTTP ``CONNECT`` proxies, sans-IO: which proxy (if any) a server URL goes through.

rdv reaches its server through a proxy only with ``CONNECT`` (RFC 9110 section 9.3.6):
a forward proxy that relays ``GET http://...`` requests drops the hop-by-hop
``Connection``/``Upgrade`` headers the rdv/1 handshake needs, so the relay could never
start through one (docs/PROTOCOL.md section 17.1). ``CONNECT`` gives a byte tunnel: the
rdv request, the ``101`` and then the relayed stream pass through it untouched.

The environment follows curl's conventions, which most tools share:

- ``https://`` servers use ``HTTPS_PROXY`` (or ``https_proxy``), ``http://`` servers
  ``HTTP_PROXY`` (or ``http_proxy``); ``ALL_PROXY`` is the fallback for both. The lower
  case name wins when both are set; upper case ``HTTP_PROXY`` is ignored under CGI
  (``REQUEST_METHOD`` set: the "httpoxy" rule, where a request header could set it).
- ``NO_PROXY`` (or ``no_proxy``): comma-separated hosts that go direct: ``*`` for all,
  a domain (``example.com``, ``.example.com`` and ``*.example.com`` all match
  ``a.example.com`` and the domain itself), an IP address, or a CIDR network
  (``10.0.0.0/8``, ``::1/128``); a ``:port`` suffix limits an entry to one port.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from rdv_core.wire._handshake import ServerURL
from rdv_core.wire._http1.head import Head, ProtocolError

#: What ``--proxy`` takes to mean "never a proxy, whatever the environment says".
NO_PROXY_WORD: Final = "none"

#: An HTTP token (RFC 9110 section 5.6.2): what an auth scheme's name is made of.
_TOKEN: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")

#: curl's default port for an ``http://`` proxy without one; we mean the same thing.
DEFAULT_PROXY_PORT: Final = 1080


@dataclass(frozen=True)
class ProxyURL:
    """An HTTP proxy: ``http://[user:password@]host[:port]``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: The environment variable the proxy came from (``HTTPS_PROXY``, ``all_proxy``...),
    #: "" when it was given (``--proxy``): errors say it, so the user knows what to change.
    source: str = field(default="", compare=False)

    @property
    def named(self) -> str:
        """The proxy for an error message: without credentials, with where it came from."""
        return f"{self}" + (f" (from {self.source})" if self.source else "")

    def __str__(self) -> str:
        """The proxy without its credentials (safe to print and to log)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"http://{user}{host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic), or None without credentials."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def parse_proxy_url(text: str) -> ProxyURL:
    """Parse ``http://[user:password@]host[:port]`` (a bare ``host:port`` means http).

    Credentials may be percent-encoded (``p%40ss`` for ``p@ss``), as in curl. The
    credentials end at the last ``@``, so a password with a bare ``#``, ``/`` or ``?``
    still works (a URL parser would take it for the start of a fragment, path or query,
    and its error would quote a piece of the password).

    Raises:
        ValueError: for anything else, naming the URL without its password.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    scheme, _, rest = raw.partition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if scheme.lower() != "http":
        raise ValueError(
            f"bad proxy URL {_redacted(text)!r}: only http:// proxies are supported "
            "(rdv tunnels through them with CONNECT; TLS to the server still works inside)"
        )
    try:
        # Only the part after the credentials goes to the URL parser: nothing it quotes
        # in an error can be a piece of the password.
        parts = urllib.parse.urlsplit("http://" + hostport)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad proxy URL {_redacted(text)!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"bad proxy URL {_redacted(text)!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"bad proxy URL {_redacted(text)!r}: a proxy URL has no path or query")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(secret) if colon else None
    return ProxyURL(
        parts.hostname, port if port is not None else DEFAULT_PROXY_PORT, username, password
    )


def _redacted(text: str) -> str:
    """``text`` with a password (``user:secret@``) replaced by ``***``."""
    head, sep, tail = text.rpartition("@")
    if not sep:
        return text
    scheme, colon_slashes, userinfo = head.rpartition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{colon_slashes}{user}:***@{tail}" if ":" in userinfo else text


def _env(env: Mapping[str, str], name: str) -> str | None:
    """``name`` in lower case, else upper case (skipped under CGI for ``HTTP_PROXY``)."""
    found = _env_named(env, name)
    return found[1] if found else None


def _env_named(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The variable (as spelt in ``env``) and its value: lower case first, as curl."""
    lower = env.get(name.lower())
    if lower:
        return name.lower(), lower
    if name == "HTTP_PROXY" and "REQUEST_METHOD" in env:
        return None
    upper = env.get(name.upper())
    return (name.upper(), upper) if upper else None


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """True when ``host:port`` matches an entry of a ``NO_PROXY`` list."""
    host = host.strip("[]").split("%", 1)[0].lower().rstrip(".")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry_host, strict=False):
                    return True
            except ValueError:
                pass
            continue
        # ``*.example.com`` as Go and Node read it: the same as ``.example.com``.
        domain = entry_host.removeprefix("*").lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` / ``v6`` / ``net/len`` into host and optional port."""
    if entry.startswith("["):
        inner, _, rest = entry[1:].partition("]")
        return inner, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def proxy_for(server: ServerURL, env: Mapping[str, str]) -> ProxyURL | None:
    """The proxy the environment asks for to reach ``server``, or None (go direct).

    Raises:
        ValueError: the environment names a proxy that is not a valid proxy URL.
    """
    if bypasses_proxy(server.host, server.port, _env(env, "NO_PROXY") or ""):
        return None
    found = _env_named(env, "HTTPS_PROXY" if server.tls else "HTTP_PROXY") or _env_named(
        env, "ALL_PROXY"
    )
    if found is None:
        return None
    name, raw = found
    try:
        proxy = parse_proxy_url(raw)
    except ValueError as exc:
        # Say which variable: the user did not type this URL on the command line.
        raise ValueError(f"{name}: {exc} (fix or unset {name}, or --proxy none)") from None
    return dataclasses.replace(proxy, source=name)


def choose_proxy(
    given: str | None, server: ServerURL, env: Mapping[str, str] | None
) -> ProxyURL | None:
    """The proxy to reach ``server`` through: ``given`` (``--proxy``; :data:`NO_PROXY_WORD` means
    none), else the environment ``env`` (None: do not read it), else None (go direct).

    The one rule the client and the doctor share (docs/PROTOCOL.md section 17.1), so that the
    doctor measures the way the race will go.

    Raises:
        ValueError: the proxy URL (given or from the environment) is not valid.
    """
    if given is not None:
        if given.strip().lower() == NO_PROXY_WORD:
            return None
        return parse_proxy_url(given)
    return proxy_for(server, env) if env is not None else None


def build_connect_request(server: ServerURL, proxy: ProxyURL) -> bytes:
    """The ``CONNECT host:port`` request that opens a tunnel to ``server``."""
    host = server.host.split("%", 1)[0]
    authority = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    auth = proxy.authorization
    if auth is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def connect_refusal(
    status: int, reason: str, proxy: ProxyURL, server: ServerURL, challenge: str | None = None
) -> str:
    """A one-line explanation of a proxy's non-2xx answer to ``CONNECT``; ``challenge`` is
    its ``Proxy-Authenticate`` (every line joined), which names the schemes it takes."""
    # "CONNECT to 2001:db8::1:8080" named no port for sure: IPv6 goes in brackets (section 9).
    target = (
        f"[{server.host}]:{server.port}" if ":" in server.host else f"{server.host}:{server.port}"
    )
    schemes = _schemes(challenge)
    if status in (401, 407) and schemes and "basic" not in {x.lower() for x in schemes}:
        # Office proxies often take only Kerberos/NTLM: no user:password in a URL helps,
        # and saying "put them in the URL" sent people round in circles.
        why = (
            f"the proxy wants {' or '.join(schemes)} login, which rdv cannot do (only "
            f"Basic): point {proxy.source or '--proxy'} at a local proxy that logs in for "
            "you (cntlm, px)"
        )
    elif status in (401, 407):  # 407 is the standard; some proxies (tinyproxy) say 401
        where = proxy.source or "the proxy URL"
        why = (
            f"the proxy wants credentials: put them in {where} as "
            "http://user:password@host:port (percent-encode @ : / # in them as "
            "%40 %3A %2F %23)"
            if proxy.username is None
            else f"the proxy refused the credentials of user {proxy.username!r}: "
            f"check the user name and password in {where}"
        )
    elif status in (403, 405):
        why = (
            f"it does not allow CONNECT to {target} (many proxies allow only port 443: "
            "an https:// rdv server on 443 may pass)"
        )
    elif status in (502, 503, 504):
        why = f"it could not reach {target}"
    else:
        why = "it refused the tunnel"
    return f"the proxy {proxy.named} answered {status} {reason}".rstrip() + f": {why}"


def _schemes(challenge: str | None) -> list[str]:
    """The auth schemes a ``Proxy-Authenticate`` value offers (RFC 9110 section 11.6.2),
    in order: each challenge starts with a token that is not ``name=value``."""
    found: list[str] = []
    for part in (challenge or "").split(","):
        words = part.strip().split()
        # A scheme is a token; a quoted parameter with a comma in it leaves a piece
        # with a quote or "=" in it, which is not one.
        if words and _TOKEN.fullmatch(words[0]) and words[0] not in found:
            found.append(words[0])
    return found


def check_connect_status(
    status: int, reason: str, proxy: ProxyURL, server: ServerURL, challenge: str | None = None
) -> None:
    """Accept a 2xx answer to ``CONNECT``.

    Raises:
        ProtocolError: for any other status, with :func:`connect_refusal`'s explanation.
    """
    if not 200 <= status < 300:
        raise ProtocolError(connect_refusal(status, reason, proxy, server, challenge))


def middlebox_hint(head: Head) -> str | None:
    """Name the HTTP proxy that answered a DIAL/ACCEPT instead of the server, if one did.

    A proxy that relays requests (rather than tunnelling them) marks its answers with
    ``Via`` (RFC 9110 section 7.6.3) and drops ``Upgrade``, so the ``101`` never comes.
    """
    via = head.get("Via")
    if not via:
        return None
    return (
        f"an HTTP proxy answered on the way to the server (Via: {via}); it cannot pass "
        "rdv's Upgrade: reach the server directly, through the proxy with CONNECT "
        "(--proxy), or over https://"
    )
