"""The doctor's routes on the server: observed address, discovery, bounded dial-back.

docs/PROTOCOL.md section 15.1. One :class:`ProbeService` answers for every front (the native
main port, the probe ports of :mod:`rdv_core.server._probe_ports`, the aiohttp mount of
:mod:`rdv_core.server._probe_aiohttp`): a front hands it the request's method, target,
header getter and the two ends of the TCP conn, and writes the :class:`ProbeAnswer` back.

What keeps the routes harmless (the threat model of the README's doctor section):

- ``/.rdv/observed`` and ``/.rdv/probes`` answer the requester with a few hundred bytes about
  its own conn: no amplification. They are still rate-limited per client IP (its observed
  address: behind a trusted proxy, the forwarded one; :data:`PROBE_RATE`/s, bursts of
  :data:`PROBE_BURST`) and globally, so a flood costs the server little (``429`` past the
  limit).
- ``/.rdv/dial-back`` is off unless the operator turns it on. Its target is the request's own
  observed address (the TCP peer, or a trusted proxy's forwarding headers), never an address
  the client names (behind a balancer's PROXY header, the address it names: forwarding
  headers on that conn are never consulted); a query naming anything but the nonce is
  refused. Per client IP, one at a time and :data:`DIALBACK_PER_IP_BURST` then one every
  :data:`DIALBACK_PER_IP_EVERY_S` s; globally :data:`DIALBACK_CONCURRENT` at a time and
  :data:`DIALBACK_GLOBAL_PER_S` per second. Each sends at most two SYNs and one line: a
  stranger can make the server dial its own address no more than 9 times in a first minute
  and 6 a minute after, and nothing else (a trusted proxy that passes clients' own
  forwarding headers on lets one name any address, which these limits then bound alike).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from rdv_core.server._dialback import dial_back
from rdv_core.server._observed import HeaderGetter, peer_address
from rdv_core.server._ratelimit import KeyedBuckets, TokenBucket
from rdv_core.wire import (
    DIALBACK_PATH,
    PROBE_PATHS,
    PROBES_PATH,
    Addr,
    Observed,
    ProbeDirectory,
    ProtocolError,
    parse_nonce,
)
from rdv_core.wire._probe import MAX_PROBE_PORTS, dump_body

log = logging.getLogger("rdv.server")

PROBE_RATE: Final = 20.0
PROBE_BURST: Final = 40.0
PROBE_GLOBAL_RATE: Final = 2000.0
PROBE_GLOBAL_BURST: Final = 4000.0
DIALBACK_PER_IP_BURST: Final = 3.0
DIALBACK_PER_IP_EVERY_S: Final = 10.0
DIALBACK_CONCURRENT: Final = 4
DIALBACK_GLOBAL_PER_S: Final = 2.0
DIALBACK_GLOBAL_BURST: Final = 10.0
JSON: Final = "application/json"

ObserveFunc = Callable[[Addr | None, HeaderGetter], Addr | None]


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """What a front writes back: status, body, content type, and ``Retry-After`` for 429."""

    status: int
    body: str
    content_type: str = JSON
    retry_after: int | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        extra = [("Cache-Control", "no-store")]
        if self.retry_after is not None:
            extra.append(("Retry-After", str(self.retry_after)))
        return extra


def _error(status: int, message: str, retry_after: float | None = None) -> ProbeAnswer:
    return ProbeAnswer(
        status,
        message + "\n",
        "text/plain; charset=utf-8",
        None if retry_after is None else max(1, round(retry_after + 0.5)),
    )


class ProbeService:
    """Answers the probe routes of one server.

    Args:
        probe_ports: The extra ports announced by ``/.rdv/probes`` (``rdv serve --probe-port``).
        dial_back: Offer ``/.rdv/dial-back`` (off by default: it makes the server connect out).
        observe: ``(tcp_peer, get_header) -> observed address``; pass ``RdvServer.observe`` so
            that trusted proxies count the same as for rdv requests (default: the TCP peer).

    Attributes:
        dial_backs: Dial-backs made (for tests and metrics).
        refused: Requests refused by a rate limit.
    """

    def __init__(
        self,
        probe_ports: Iterable[int] = (),
        *,
        dial_back: bool = False,
        observe: ObserveFunc | None = None,
    ) -> None:
        ports = tuple(dict.fromkeys(int(p) for p in probe_ports))
        if len(ports) > MAX_PROBE_PORTS or any(not 0 < p <= 65535 for p in ports):
            raise ValueError(f"at most {MAX_PROBE_PORTS} probe ports, each 1-65535")
        self.probe_ports = ports
        self.dial_back_enabled = dial_back
        self._observe = observe or peer_address
        self._probe_ip = KeyedBuckets(PROBE_RATE, PROBE_BURST)
        self._probe_all = TokenBucket(PROBE_GLOBAL_RATE, PROBE_GLOBAL_BURST)
        self._dial_ip = KeyedBuckets(1.0 / DIALBACK_PER_IP_EVERY_S, DIALBACK_PER_IP_BURST)
        self._dial_all = TokenBucket(DIALBACK_GLOBAL_PER_S, DIALBACK_GLOBAL_BURST)
        self._dialing: set[str] = set()
        self._dial_slots = asyncio.Semaphore(DIALBACK_CONCURRENT)
        self.dial_backs = 0
        self.refused = 0

    @staticmethod
    def handles(method: str, path: str) -> bool:
        """True for a request this service answers (``GET``/``HEAD`` of a probe path)."""
        return method in ("GET", "HEAD") and path in PROBE_PATHS

    def directory(self) -> ProbeDirectory:
        """What ``GET /.rdv/probes`` answers: the probe ports, whether it dials back."""
        return ProbeDirectory(self.probe_ports, self.dial_back_enabled)

    def _limited(self, remote: Addr | None, observed: Addr | None) -> ProbeAnswer | None:
        # Per client: behind a trusted proxy (nginx's X-Forwarded-For) the TCP peer is the
        # proxy for everyone, and one client probing in a loop got every other client behind
        # it 429. The observed address is the client's (forwarding headers count only from
        # --trust-proxy networks, so nobody else can pick a key), as for the lobby caps.
        source = observed if observed is not None else remote
        key = str(source.unmapped().ip) if source is not None else "?"
        if not self._probe_ip.take(key):
            self.refused += 1
            return _error(429, "too many probe requests", self._probe_ip.retry_after(key))
        if not self._probe_all.take():
            self.refused += 1
            return _error(429, "too many probe requests", self._probe_all.retry_after())
        return None

    def answer_now(
        self,
        path: str,
        get_header: HeaderGetter,
        remote: Addr | None,
        local_port: int,
        proxied: bool = False,
    ) -> ProbeAnswer:
        """Answer ``/.rdv/observed`` or ``/.rdv/probes`` (no waiting involved).

        ``proxied``: ``remote`` came from a trusted balancer's PROXY header (see
        :meth:`_observed`).
        """
        observed = self._observed(remote, get_header, proxied)
        limited = self._limited(remote, observed)
        if limited is not None:
            return limited
        if path == PROBES_PATH:
            return ProbeAnswer(200, dump_body(self.directory().to_json()))
        if observed is None:
            return _error(404, "no observed address for this conn")
        upgrade = get_header("Upgrade")
        return ProbeAnswer(200, dump_body(Observed(observed, local_port, upgrade).to_json()))

    def _observed(
        self, remote: Addr | None, get_header: HeaderGetter, proxied: bool = False
    ) -> Addr | None:
        if proxied:
            # A trusted balancer's PROXY header named the client: that is the address, and
            # forwarding headers on the conn are not consulted (docs/PROTOCOL.md section 14),
            # as for rdv requests. HAProxy in mode http passes the client's own
            # X-Forwarded-For on, so a client inside a --trust-proxy network named any
            # address as its own here and had the server dial it back (section 15.1).
            return None if remote is None else remote.unmapped()
        try:
            return self._observe(remote, get_header)
        except Exception:
            log.exception("observed-address function failed")
            return None

    async def answer(
        self,
        path: str,
        query: str,
        get_header: HeaderGetter,
        remote: Addr | None,
        local: Addr | None,
        proxied: bool = False,
    ) -> ProbeAnswer:
        """Answer any probe route; ``/.rdv/dial-back`` waits for the dial (at most ~2.5 s)."""
        if path != DIALBACK_PATH:
            port = local.port if local else 0
            return self.answer_now(path, get_header, remote, port, proxied)
        target = self._observed(remote, get_header, proxied)
        limited = self._limited(remote, target)
        if limited is not None:
            return limited
        if not self.dial_back_enabled:
            return _error(404, "dial-back is off on this server (rdv serve --dial-back)")
        try:
            nonce = parse_nonce(query)
        except ProtocolError as exc:
            return _error(400, exc.message)
        if target is None:
            return _error(404, "no observed address for this conn")
        key = str(target.unmapped().ip)
        if key in self._dialing:
            self.refused += 1
            return _error(429, "one dial-back at a time per address", 1.0)
        if not self._dial_ip.take(key):
            self.refused += 1
            return _error(
                429, "too many dial-backs for this address", self._dial_ip.retry_after(key)
            )
        if not self._dial_all.take():
            self.refused += 1
            return _error(429, "too many dial-backs", self._dial_all.retry_after())
        self._dialing.add(key)
        try:
            async with self._dial_slots:
                self.dial_backs += 1
                result = await dial_back(target, nonce, str(local.ip) if local else None)
        finally:
            self._dialing.discard(key)
        log.info("dial-back to %s: %s", target, result.result)
        return ProbeAnswer(200, dump_body(result.to_json()))


def split_target(target: str) -> tuple[str, str]:
    """``/.rdv/dial-back?nonce=x`` -> (``/.rdv/dial-back``, ``nonce=x``)."""
    path, _, query = target.partition("?")
    return path, query
