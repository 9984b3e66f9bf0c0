"""The rdv client: ``dial()`` and ``accept()`` a peer through an rdv/1 server.

:class:`Client` holds the settings and checks the arguments before any traffic; each
call runs one :class:`~rdv_core.client._attempt.Attempt`. One attempt, step by step
(docs/PROTOCOL.md section 1):

1. Bind one local port P and listen on it (dual-stack where possible).
2. From P, connect to the server over IPv4 (TLS for ``https://``) and send the
   ``DIAL``/``ACCEPT`` request with our self addresses, then wait silently in the
   server's lobby until the peer arrives and the server answers ``101``.
3. Race direct candidates against the relay (:mod:`rdv_core.client._race`) and return the
   winning conn as a :class:`~rdv_core.client._conn.Conn`.

Every step is an event (:mod:`rdv_core.events`), delivered to ``on_event`` and kept
in :attr:`Conn.events <rdv_core.client._conn.Conn.events>`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence

from rdv_core.client._attempt import Attempt
from rdv_core.client._budget import AddressHistory, BudgetPolicy
from rdv_core.client._conn import Conn
from rdv_core.client._localview import local_paths
from rdv_core.client._pickers import Picker, WaitForP2P
from rdv_core.client._prepare import check_sync_callable, choose_proxy_memo, server_url
from rdv_core.client._prepare import open_listeners as open_listeners  # (its old home)
from rdv_core.client._rejoin import RejoinPolicy
from rdv_core.client._response import OBSERVED_HINT as OBSERVED_HINT  # (its old home)
from rdv_core.events import Clock, EventCallback
from rdv_core.wire import (
    ACCEPT,
    DIAL,
    NO_PROXY_WORD,
    Addr,
    AddrSpace,
    Method,
    ProxyURL,
    ServerURL,
    build_request,
    parse_proxy_url,
)


class Client:
    """Dials and accepts rdv conns. Cheap to build; one client can run many attempts.

    Args:
        spaces: Address spaces used for direct conns (our self addrs, the peer
            addresses we dial, the inbound conns we keep). ``AddrSpace.NONE``
            forces the relay.
        picker: How the dialer picks (default: ``WaitForP2P(1.0)``). The accepter
            always takes the first conn on which ``CONTINUE`` arrives.
        timeout: Overall seconds for one ``dial()``/``accept()``, lobby wait included
            (None: no limit). Raises :class:`~rdv_core.errors.RdvTimeoutError`.
        ssl_context: TLS settings for ``https://`` servers (default: system CAs).
        headers: Extra request headers, e.g. ``[("Authorization", "Bearer ...")]``.
        on_event: Called with every event, synchronously, as it happens.
        proxy: An HTTP proxy to reach the server through with ``CONNECT``
            (``http://[user:password@]host[:port]``), or ``"none"`` for never; None
            (the default) takes it from the environment when ``trust_env`` is set
            (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``, as curl does;
            docs/PROTOCOL.md section 17.1).
        trust_env: Read the proxy environment when ``proxy`` is None.
        interfaces: Use only these network interfaces (``eth1``), for the server conn,
            our self addresses and every dial; default: every uplink, public
            candidates being dialled from each (docs/LAB-NOTES.md section 13).
        sources: Use only these local addresses, likewise.
        syn_budget: The cap on the SYNs one attempt sends (default: :class:`BudgetPolicy`,
            README "NAT lab"). Addresses that never connect get less in this client's
            later attempts (:attr:`syn_history`).
        fast_start: Offer fast start (docs/PROTOCOL.md section 16): when the peer
            offers it too, the dialer takes the relay at once and the conn moves to a
            direct path in the background. Otherwise plain rdv/1.
        early_data: Fast start, dialer: called once the relay is picked, without
            blocking; the bytes it returns are the conn's first, sent in the very write
            of ``CONTINUE`` and ``HELLO``, as TCP Fast Open's (docs/PROTOCOL.md 16.2).
        rejoin: When the server conn is lost before the ``101`` (a restart, a drain, a
            balancer's dead backend), send the request again with the same token at the
            same URL, as often and as paced as this says (docs/PROTOCOL.md section 18);
            None (the default): the loss is the attempt's error.

    Raises:
        ValueError: a bad proxy URL, or a timeout below 0 (or NaN).
        TypeError: ``on_event`` or ``early_data`` is not callable, or an ``async def``.
    """

    def __init__(
        self,
        spaces: AddrSpace = AddrSpace.DEFAULT,
        picker: Picker | None = None,
        timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Sequence[tuple[str, str]] = (),
        on_event: EventCallback | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        interfaces: Sequence[str] = (),
        sources: Sequence[str] = (),
        syn_budget: BudgetPolicy | None = None,
        predicted_addrs: Sequence[Addr] = (),
        fast_start: bool = False,
        early_data: Callable[[], bytes] | None = None,
        rejoin: RejoinPolicy | None = None,
    ) -> None:
        if proxy is not None and proxy.strip().lower() != NO_PROXY_WORD:
            parse_proxy_url(proxy)  # a bad proxy URL is a ValueError now, not at connect time
        if timeout is not None and not timeout >= 0:  # NaN too, which compares false
            # Else every attempt "timed out after -1s" at once, naming no mistake.
            raise ValueError(f"timeout must be >= 0 seconds or None (no limit), got {timeout!r}")
        check_sync_callable("on_event", on_event)
        check_sync_callable("early_data", early_data)
        self.proxy = proxy
        self.trust_env = trust_env
        self.interfaces = tuple(interfaces)
        self.sources = tuple(sources)
        self.spaces = spaces
        #: Extra self addrs to send: the public ports a sequential NAT will most likely give
        #: our next conns (``rdv_core.doctor.predicted_addrs``, docs/PROTOCOL.md section 15.6).
        self.predicted_addrs = tuple(predicted_addrs)
        self.fast_start = fast_start
        self.early_data = early_data
        self.rejoin = rejoin
        self.picker: Picker = picker if picker is not None else WaitForP2P(1.0)
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.headers = tuple(headers)
        self.on_event = on_event
        self.syn_budget = syn_budget or BudgetPolicy()
        #: What this client's attempts learnt about the addresses they dialled.
        self.syn_history = AddressHistory()

    async def dial(self, url: str, token: str) -> Conn:
        """Connect to the peer that accepts ``token`` at the server ``url`` (we pick).

        Raises:
            ValueError: for a bad URL or header (before any network traffic).
            ServerRejectedError: the server answered an error status.
            ServerConnectError: the server could not be reached.
            RdvProtocolError: the server or the peer broke the protocol.
            NoConnectionError: no conn could be used.
            RdvTimeoutError: ``timeout`` expired.
        """
        return await self.connect(DIAL, url, token)

    async def accept(self, url: str, token: str) -> Conn:
        """Connect to the peer that dials ``token`` at the server ``url``.

        Raises:
            The same errors as :meth:`dial`.
        """
        return await self.connect(ACCEPT, url, token)

    async def connect(self, method: Method, url: str, token: str) -> Conn:
        """``dial`` or ``accept`` by method name (Go's ``Client.Do``)."""
        # The attempt's clock starts here, so that events and ``Conn.elapsed_s`` cover the
        # whole call, local preparation included (bench/connect.py's "setup" phase).
        clock = Clock()
        if method not in (DIAL, ACCEPT):
            raise ValueError(f"not an rdv method: {method!r}")
        server = server_url(url)
        # Validate the token and the extra headers now, not after a lobby wait.
        build_request(method, server, token, (), self.headers)
        proxy = self.proxy_for(server)
        # A bad --interface: ValueError now.
        paths = local_paths(self.interfaces, self.sources, self.spaces)
        return await Attempt(self, method, server, token, proxy, paths, clock).run()

    def proxy_for(self, server: ServerURL) -> ProxyURL | None:
        """The proxy this client reaches ``server`` through, or None (PROTOCOL.md section 17.1).

        Raises:
            ValueError: the proxy URL (given or from the environment) is not valid.
        """
        return choose_proxy_memo(self.proxy, server, self.trust_env)
