"""Property tests: formatting then parsing round-trips, and arbitrary bytes never raise
anything but the protocol's own error (:class:`ProtocolError` and its subclasses)."""

from __future__ import annotations

import contextlib
import itertools
import string
import urllib.parse
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv_core.wire import (
    ACCEPT,
    DIAL,
    MAX_PEER_ADDRS,
    MAX_SELF_ADDRS,
    Addr,
    AddrError,
    BodyCollector,
    HeadParser,
    LineBuffer,
    Misdial,
    Other,
    ProtocolError,
    RequestRejected,
    build_header_line,
    build_other,
    build_rejection,
    build_request,
    build_upgrade_response,
    check_header_line,
    check_http_request,
    check_request,
    check_upgrade_response,
    escape_token,
    format_addr_list,
    opposite,
    parse_addr_list,
    parse_command,
    parse_server_url,
    sort_addrs,
    unescape_token,
)
from rdv_core.wire._http1.checks import has_bad_escape
from rdv_core.wire._http1.head import (
    _TOKEN_RE,
    _find_head_end,
    _has_ctl,
    _parse_header_lines,
    _split_lines,
)
from rdv_core.wire._names import PATH_SEGMENT_SAFE

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addresses = st.builds(Addr, st.ip_addresses(), st.integers(0, 65535))
methods = st.sampled_from([DIAL, ACCEPT])
#: Any text without lone surrogates (a Python str that is valid Unicode).
any_tokens = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
safe_tokens = st.text(string.ascii_letters + string.digits + "._~-", min_size=1, max_size=40)
tokens = st.one_of(safe_tokens, any_tokens)
header_names = st.text(
    string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=12
)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at up to 12 points that hypothesis chooses."""
    if len(data) < 2:
        return [data]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=12))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def parse(kind: Literal["request", "response"], chunks: list[bytes]) -> tuple[object, bytes]:
    parser = HeadParser(kind)
    head = None
    for chunk in chunks:
        head = parser.feed(chunk)
    assert head is not None
    return head, parser.trailing


# ----- round trips


@SETTINGS
@given(
    method=methods,
    token=tokens,
    self_addrs=st.lists(addresses, max_size=MAX_SELF_ADDRS),
    prefix=st.sampled_from(["", "/rdv", "/a/b/", "/x%20y"]),
    extra=st.lists(
        st.tuples(header_names.filter(lambda n: n.lower() not in RESERVED), header_values),
        max_size=4,
    ),
    trailing=st.binary(max_size=20),
    data=st.data(),
)
def test_request_round_trip(
    method: str,
    token: str,
    self_addrs: list[Addr],
    prefix: str,
    extra: list[tuple[str, str]],
    trailing: bytes,
    data: st.DataObject,
) -> None:
    url = parse_server_url(f"http://rdv.example:8080{prefix}")
    raw = build_request(method, url, token, self_addrs, extra)
    head, rest = parse("request", data.draw(chunked(raw + trailing)))
    assert rest == trailing
    request = check_request(head, url.path_prefix)  # type: ignore[arg-type]
    assert (request.method, request.token, list(request.self_addrs)) == (method, token, self_addrs)


RESERVED: set[str] = {
    "host",
    "connection",
    "upgrade",
    "rdv-self-addrs",
    "content-length",
    "transfer-encoding",
    "trailer",
}


@SETTINGS
@given(
    observed=st.none() | addresses,
    peers=st.lists(addresses, max_size=MAX_PEER_ADDRS),
    trailing=st.binary(max_size=40),
    data=st.data(),
)
def test_upgrade_response_round_trip(
    observed: Addr | None, peers: list[Addr], trailing: bytes, data: st.DataObject
) -> None:
    raw = build_upgrade_response(observed, peers)
    head, rest = parse("response", data.draw(chunked(raw + trailing)))
    assert rest == trailing
    upgrade = check_upgrade_response(head)  # type: ignore[arg-type]
    assert (upgrade.observed_addr, list(upgrade.peer_addrs)) == (observed, peers)


@SETTINGS
@given(method=methods, token=tokens, other=tokens, data=st.data())
def test_header_line_round_trip(method: str, token: str, other: str, data: st.DataObject) -> None:
    raw = build_header_line(method, token)
    assert raw.isascii() and raw.endswith(b"\n") and raw.count(b"\n") == 1
    buffer = LineBuffer()
    line = None
    for chunk in data.draw(chunked(raw + b"CONTINUE\n")):
        buffer.feed(chunk)
        line = line or buffer.next_line()
    assert line is not None
    check_header_line(line, opposite(method), token)
    if other != token:
        try:
            check_header_line(line, opposite(method), other)
        except Misdial:
            pass
        else:
            raise AssertionError("a different token must be a misdial")
    try:
        check_header_line(line, method, token)
    except Misdial:
        pass
    else:
        raise AssertionError("the same method must be a misdial")


@SETTINGS
@given(addr=addresses)
def test_other_round_trip(addr: Addr) -> None:
    raw = build_other(addr)
    assert raw.endswith(b"\n")
    assert parse_command(raw[:-1]) == Other(addr)


@SETTINGS
@given(addr=addresses)
def test_addr_round_trip(addr: Addr) -> None:
    assert Addr.parse(str(addr)) == addr
    assert str(Addr.parse(str(addr))) == str(addr)


@SETTINGS
@given(addrs=st.lists(addresses, max_size=12))
def test_addr_list_round_trip_and_wire_order(addrs: list[Addr]) -> None:
    assert parse_addr_list(format_addr_list(addrs)) == addrs
    ordered = sort_addrs(addrs)
    assert len(set(ordered)) == len(ordered)
    assert ordered == sorted({a.unmapped() for a in addrs})
    families = [a.is_ipv4 for a in ordered]
    assert families == sorted(families, reverse=True)  # every IPv4 before any IPv6


@SETTINGS
@given(token=any_tokens)
def test_token_escaping_round_trip(token: str) -> None:
    escaped = escape_token(token)
    assert set(escaped) <= set(string.ascii_letters + string.digits + "-._~$&+=:@%")
    assert unescape_token(escaped) == token


@SETTINGS
@given(token=tokens, text=st.one_of(tokens, st.text("%0aF/ \u00e9", max_size=12)))
def test_token_fast_paths_agree_with_urllib(token: str, text: str) -> None:
    # escape_token and unescape_token skip urllib when there is nothing to do (issue 10,
    # docs/notes/issue-10-connect-fifth.md): the same result as urllib's for any input.
    assert escape_token(token) == urllib.parse.quote(token, safe=PATH_SEGMENT_SAFE)
    try:
        expected: str | None = urllib.parse.unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        expected = None
    if "%" in text and has_bad_escape(text):
        expected = None
    try:
        assert unescape_token(text) == expected
    except ProtocolError:
        assert expected is None


def _head_end_line_by_line(buf: bytes, start: int) -> int:
    """The head's end as the parser found it before issue 10: the first line break from
    ``start`` that a blank line follows (``\\n`` or ``\\r\\n``)."""
    i = buf.find(b"\n", start)
    while i >= 0:
        if buf[i + 1 : i + 2] == b"\n":
            return i + 2
        if buf[i + 1 : i + 3] == b"\r\n":
            return i + 3
        i = buf.find(b"\n", i + 1)
    return -1


@FUZZ
@given(raw=st.binary(max_size=40) | st.text("\r\na:", max_size=40).map(str.encode), data=st.data())
def test_head_end_search_agrees_with_a_line_by_line_scan(raw: bytes, data: st.DataObject) -> None:
    # _find_head_end searches both blank-line patterns in C (issue 10,
    # docs/notes/issue-10-connect-sixth.md): the same end as a scan line by line.
    start = data.draw(st.integers(0, len(raw) + 1))
    assert _find_head_end(bytearray(raw), start) == _head_end_line_by_line(raw, start)


def _lines_and_headers_as_before(block: bytes, kind: Literal["request", "response"]) -> object:
    """``_split_lines`` and ``_parse_header_lines`` as they were before issue 10's sixth
    pass (one line at a time): the header list, or the error's type, message and status."""
    out = [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]
    while out and out[-1] == b"":
        out.pop()
    headers: list[tuple[str, str]] = []
    try:
        if len(out[1:]) > 100:
            raise ProtocolError("too many HTTP headers", status=431)
        for raw in out[1:]:
            if raw[:1] in (b" ", b"\t"):
                raise ProtocolError("obsolete header line folding")
            name, colon, value = raw.partition(b":")
            if not colon or not _TOKEN_RE.fullmatch(name):
                raise ProtocolError(f"malformed header line {raw[:100]!r}")
            if b"\0" in value or b"\r" in value:
                raise ProtocolError("invalid character in header value")
            if kind == "request" and _has_ctl(value, allow_tab=True):
                raise RequestRejected("400 Bad Request: invalid header value", 400, http_level=True)
            headers.append((name.decode("ascii"), value.decode("latin-1").strip(" \t")))
    except ProtocolError as exc:
        return (type(exc), exc.message, exc.status)
    return (out, headers)


@FUZZ
@given(
    lines=st.lists(st.text("ab:- \t\r\n\x00\x01\x7f", max_size=8), max_size=6),
    crlf=st.booleans(),
    kind=st.sampled_from(["request", "response"]),
)
def test_header_block_fast_paths_agree_with_line_by_line(
    lines: list[str], crlf: bool, kind: Literal["request", "response"]
) -> None:
    # The head's lines are split in one call when all end in CRLF, and a block without
    # control bytes skips the per-line checks for them (issue 10): same lines, headers
    # and errors as before.
    end = b"\r\n" if crlf else b"\n"
    block = b"GET / HTTP/1.1" + end + b"".join(line.encode("latin-1") + end for line in lines) + end
    split = _split_lines(block)
    try:
        got: object = (split, _parse_header_lines(split[1:], kind))
    except ProtocolError as exc:
        got = (type(exc), exc.message, exc.status)
    assert got == _lines_and_headers_as_before(block, kind)


# ----- arbitrary input never raises anything but ProtocolError


def valid_request() -> bytes:
    url = parse_server_url("http://h:1/rdv")
    return build_request(DIAL, url, "tok", [Addr.parse("1.2.3.4:5"), Addr.parse("[::1]:6")])


def valid_response() -> bytes:
    return build_upgrade_response(Addr.parse("1.2.3.4:5"), [Addr.parse("[::1]:6")])


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bytes inserted, deleted or replaced (protocol-ish bytes too)."""
    data = bytearray(base)
    interesting = st.sampled_from(
        [b"\r", b"\n", b" ", b":", b"%", b",", b"\x00", b"\xff", b"[", b"]", b"\t"]
    )
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(interesting | st.binary(min_size=1, max_size=4))
        if op == "insert":
            data[pos:pos] = piece
        elif op == "delete":
            del data[pos : pos + len(piece)]
        else:
            data[pos : pos + len(piece)] = piece
    return bytes(data)


def request_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutated(valid_request()))


def response_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutated(valid_response()))


@FUZZ
@given(raw=request_inputs(), data=st.data())
def test_arbitrary_requests(raw: bytes, data: st.DataObject) -> None:
    parser = HeadParser("request", max_size=256)
    try:
        head = None
        for chunk in data.draw(chunked(raw)):
            head = parser.feed(chunk)
    except ProtocolError as exc:
        assert build_rejection(exc).close  # the server can always answer
        return
    if head is None:
        return
    for prefix in ("", "/rdv"):
        try:
            check_http_request(head)
            request = check_request(head, prefix)
        except RequestRejected as exc:
            reply = build_rejection(exc, head)
            assert reply.data.startswith(b"HTTP/1.")
        else:
            assert request.token and len(request.self_addrs) <= MAX_SELF_ADDRS


@FUZZ
@given(raw=response_inputs(), data=st.data())
def test_arbitrary_responses(raw: bytes, data: st.DataObject) -> None:
    parser = HeadParser("response", max_size=256)
    try:
        head = None
        for chunk in data.draw(chunked(raw)):
            head = parser.feed(chunk)
        if head is None:
            return
        if head.status == 101:
            check_upgrade_response(head)
        else:
            collector = BodyCollector(head)
            collector.feed(parser.trailing)
            assert len(collector.body) <= 1024
            assert isinstance(collector.text, str)
    except ProtocolError:
        pass


@FUZZ
@given(
    chunks=st.lists(st.binary(max_size=64) | st.sampled_from([b"\n", b"CONTINUE\n"]), max_size=20)
)
def test_arbitrary_lines(chunks: list[bytes]) -> None:
    buffer = LineBuffer(max_line=64)
    try:
        for chunk in chunks:
            buffer.feed(chunk)
            while (line := buffer.next_line()) is not None:
                assert b"\n" not in line and len(line) < 64
                for parse_line in (parse_command, lambda x: check_header_line(x, DIAL, "tok")):
                    with contextlib.suppress(ProtocolError):
                        parse_line(line)
    except ProtocolError:
        pass


@FUZZ
@given(
    line=st.binary(max_size=80) | mutated(b"OTHER [2001:db8::1]:443") | mutated(b"rdv/1 DIAL a%20b")
)
def test_arbitrary_commands_and_header_lines(line: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_command(line)
    with contextlib.suppress(Misdial):
        check_header_line(line, ACCEPT, "a b")


@FUZZ
@given(text=st.text(max_size=60) | st.text("0123456789abcdef:.[]%, ", max_size=60))
def test_arbitrary_addresses(text: str) -> None:
    with contextlib.suppress(AddrError):
        Addr.parse(text)
    with contextlib.suppress(AddrError):
        parse_addr_list(text)
    with contextlib.suppress(ProtocolError):
        unescape_token(text)
