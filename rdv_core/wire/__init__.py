"""The rdv/1 wire format, sans-IO: bytes in, values out, values in, bytes out.

This is the bottom layer of rdv_core (docs/ARCHITECTURE.md section 1): nothing here
touches a socket or an event loop, so the client, both server fronts and the tests share
it. docs/PROTOCOL.md is the specification these modules implement, cited by section:

- :mod:`._addrs`: addresses and address spaces (section 9);
- :mod:`._http1`: strict HTTP/1.1 heads, Go's pre-handler checks and error framing;
- :mod:`._names`: the methods, the protocol name, token percent-encoding (section 2);
- :mod:`._lines`: the line layer after the upgrade (section 6);
- :mod:`._nat64`: NAT64 prefixes and synthesized addresses (section 17.2);
- :mod:`._proxy`: HTTP ``CONNECT`` proxies and the proxy environment (section 17.1);
- :mod:`._printable`: text from the network made safe to show;
- :mod:`._handshake`: the DIAL/ACCEPT request, the server's checks, the ``101`` and
  errors after the upgrade (sections 2 to 5);
- :mod:`._proxy_protocol`: the PROXY protocol v1/v2 header a load balancer writes before
  the request (section 14);
- :mod:`._probe`: the doctor's probe routes and their JSON bodies (section 15).

Every public name of those modules is exported here: import the wire format from
``rdv_core.wire``.
"""

from __future__ import annotations

from rdv_core.wire._addrs import (
    SINGLE_SPACES,
    Addr,
    AddrError,
    AddrSpace,
    IPAddress,
    allows_any_direct,
    allows_direct,
    clear_caches,
    default_sources,
    format_spaces,
    parse_spaces,
    self_addrs,
    sort_addrs,
    space_of,
    unmap,
)
from rdv_core.wire._extensions import (
    EXTENSIONS_HEADER,
    FAST_START,
    PEER_EXTENSIONS_HEADER,
    format_extensions,
    offered_extensions,
    parse_extensions,
)
from rdv_core.wire._handshake import (
    MAX_PEER_ADDRS,
    MAX_SELF_ADDRS,
    USER_AGENT,
    RdvRequest,
    ServerURL,
    Upgrade,
    build_request,
    build_upgrade_error,
    build_upgrade_response,
    check_request,
    check_upgrade_response,
    format_addr_list,
    parse_addr_list,
    parse_server_url,
    peer_addrs_for,
    token_from_target,
    upgrade_response_for,
)
from rdv_core.wire._http1.checks import (
    check_http_request,
    request_path,
)
from rdv_core.wire._http1.head import (
    MAX_HEADER_BLOCK,
    MAX_HEADERS,
    Head,
    HeadParser,
    ProtocolError,
    RequestRejected,
    canonical_header_name,
    http_version,
)
from rdv_core.wire._http1.responses import (
    MAX_ERROR_BODY,
    REASONS,
    BodyCollector,
    Reply,
    build_http_error,
    build_plain_response,
    build_rejection,
    reason_phrase,
)
from rdv_core.wire._lines import (
    CONTINUE_LINE,
    MAX_LINE,
    Command,
    Continue,
    LineBuffer,
    Misdial,
    Other,
    build_header_line,
    build_other,
    check_header_line,
    parse_command,
)
from rdv_core.wire._names import (
    ACCEPT,
    DIAL,
    METHODS,
    UPGRADE_PROTOCOL,
    Method,
    escape_token,
    opposite,
    unescape_token,
)
from rdv_core.wire._nat64 import nat64_embedded, nat64_prefix, nat64_synthesize
from rdv_core.wire._printable import (
    UNSAFE_CHARS,
    printable,
    unsafe_char,
)
from rdv_core.wire._probe import (
    DIALBACK_PATH,
    OBSERVED_PATH,
    PROBE_PATHS,
    PROBES_PATH,
    DialBack,
    Observed,
    ProbeDirectory,
    parse_dial_back,
    parse_directory,
    parse_nonce,
    parse_observed,
)
from rdv_core.wire._proxy import (
    NO_PROXY_WORD,
    ProxyURL,
    build_connect_request,
    bypasses_proxy,
    check_connect_status,
    choose_proxy,
    middlebox_hint,
    parse_proxy_url,
    proxy_for,
)
from rdv_core.wire._proxy_protocol import (
    MAX_V2_HEADER,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
    build_proxy_v1,
    build_proxy_v2,
    sniff_proxy_header,
)

__all__ = [
    "ACCEPT",
    "CONTINUE_LINE",
    "DIAL",
    "DIALBACK_PATH",
    "EXTENSIONS_HEADER",
    "FAST_START",
    "MAX_ERROR_BODY",
    "MAX_HEADERS",
    "MAX_HEADER_BLOCK",
    "MAX_LINE",
    "MAX_PEER_ADDRS",
    "MAX_SELF_ADDRS",
    "MAX_V2_HEADER",
    "METHODS",
    "NO_PROXY_WORD",
    "OBSERVED_PATH",
    "PEER_EXTENSIONS_HEADER",
    "PROBES_PATH",
    "PROBE_PATHS",
    "REASONS",
    "SINGLE_SPACES",
    "UNSAFE_CHARS",
    "UPGRADE_PROTOCOL",
    "USER_AGENT",
    "Addr",
    "AddrError",
    "AddrSpace",
    "BodyCollector",
    "Command",
    "Continue",
    "DialBack",
    "Head",
    "HeadParser",
    "IPAddress",
    "LineBuffer",
    "Method",
    "Misdial",
    "Observed",
    "Other",
    "ProbeDirectory",
    "ProtocolError",
    "ProxyHeader",
    "ProxyHeaderError",
    "ProxyHeaderParser",
    "ProxyURL",
    "RdvRequest",
    "Reply",
    "RequestRejected",
    "ServerURL",
    "Upgrade",
    "allows_any_direct",
    "allows_direct",
    "build_connect_request",
    "build_header_line",
    "build_http_error",
    "build_other",
    "build_plain_response",
    "build_proxy_v1",
    "build_proxy_v2",
    "build_rejection",
    "build_request",
    "build_upgrade_error",
    "build_upgrade_response",
    "bypasses_proxy",
    "canonical_header_name",
    "check_connect_status",
    "check_header_line",
    "check_http_request",
    "check_request",
    "check_upgrade_response",
    "choose_proxy",
    "clear_caches",
    "default_sources",
    "escape_token",
    "format_addr_list",
    "format_extensions",
    "format_spaces",
    "http_version",
    "middlebox_hint",
    "nat64_embedded",
    "nat64_prefix",
    "nat64_synthesize",
    "offered_extensions",
    "opposite",
    "parse_addr_list",
    "parse_command",
    "parse_dial_back",
    "parse_directory",
    "parse_extensions",
    "parse_nonce",
    "parse_observed",
    "parse_proxy_url",
    "parse_server_url",
    "parse_spaces",
    "peer_addrs_for",
    "printable",
    "proxy_for",
    "reason_phrase",
    "request_path",
    "self_addrs",
    "sniff_proxy_header",
    "sort_addrs",
    "space_of",
    "token_from_target",
    "unescape_token",
    "unmap",
    "unsafe_char",
    "upgrade_response_for",
]
