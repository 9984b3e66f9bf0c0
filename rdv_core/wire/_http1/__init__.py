"""A strict, sans-IO HTTP/1.1 head layer: bytes in, values out, values in, bytes out.

rdv/1 (:mod:`rdv_core.wire._handshake`) is an HTTP/1.1 upgrade, and this package is the HTTP
part of it, with no rdv in it. Nothing here touches a socket or an event loop, so the
same code serves the client, the native server front and the tests (which feed every
input whole and one byte at a time).

- :mod:`~rdv_core.wire._http1.head`: :class:`Head`, the incremental :class:`HeadParser` for
  request and response heads, header names, and the errors of the whole stack
  (:class:`ProtocolError`, :class:`RequestRejected`);
- :mod:`~rdv_core.wire._http1.checks`: what Go's net/http checks on a request before any
  handler runs (target, version, Host);
- :mod:`~rdv_core.wire._http1.responses`: the responses a server writes (Go's reason phrases,
  ``http.Error`` framing, pre-handler errors, :func:`build_rejection`) and the bounded
  :class:`BodyCollector` a client reads an error body with.

Strict on what we send, tolerant but bounded on what we accept:
- the parser accepts input split at any byte and keeps every byte that follows the
  header block (:attr:`HeadParser.trailing`);
- every size is bounded; past a bound the parser raises :class:`ProtocolError`, never
  anything else.

Where the reference (Go rdv v0.0.6 on Go's net/http) answers before its handler runs
(missing Host, unparsable target, bad percent escape, unsupported HTTP major version),
:func:`check_http_request` raises :class:`RequestRejected` with ``http_level=True`` and
:func:`build_rejection` renders Go's pre-handler framing (``Connection: close``, no
Content-Length, body without newline).

Deliberate deviations from Go's net/http, all on input the reference never sends:
- the header block is bounded at :data:`MAX_HEADER_BLOCK` (Go allows 1 MiB) and at
  :data:`MAX_HEADERS` lines; past either the answer is ``431``;
- header values are decoded as Latin-1, so a non-ASCII byte echoed in an error body
  (``invalid self addrs [...]``) comes back UTF-8 encoded;
- a request line must be UTF-8 (Go takes any byte above 0x7F in a target).

The names are imported from the submodules (this package re-exports nothing);
:mod:`rdv_core.wire._handshake` re-exports them for its callers.
"""
