"""rdv/1 lines after the upgrade (section 6): peer header lines, commands, LineBuffer."""

from __future__ import annotations

import pytest

from rdv_core.wire import (
    CONTINUE_LINE,
    MAX_LINE,
    Addr,
    AddrError,
    Continue,
    LineBuffer,
    Misdial,
    Other,
    ProtocolError,
    build_header_line,
    build_other,
    check_header_line,
    format_addr_list,
    opposite,
    parse_addr_list,
    parse_command,
)

from tests.feeding import SPLITS, feed_lines, split
from tests.go_vectors import HEADER_LINES, OTHER_LINES

# ----- peer header lines


@pytest.mark.parametrize(("method", "token", "line"), HEADER_LINES)
def test_reference_header_lines(method: str, token: str, line: bytes) -> None:
    assert build_header_line(method, token) == line
    for how in SPLITS:
        lines, rest = feed_lines(split(line, how))
        assert (lines, rest) == ([line[:-1]], b"")
        check_header_line(lines[0], opposite(method), token)  # the reader's side


@pytest.mark.parametrize(
    ("line", "token"),
    [
        (b"rdv/1 DIAL a%20b%2Fc%252Fd%3Fe%23f", "a b/c%2Fd?e#f"),
        (b"rdv/1 DIAL %C3%BCmlaut+plus%3Bsemi", "\u00fcmlaut+plus;semi"),
        (b"rdv/1 DIAL ..%2Fx%2F.%2Fy", "../x/./y"),
        (b"rdv/1 DIAL %61bc", "abc"),  # any valid escape decodes
        (b"rdv/1  DIAL\ttok", "tok"),  # Sscanf takes any run of blanks
        (b"rdv/1 DIAL tok\r", "tok"),
        (b" rdv/1 DIAL tok ", "tok"),
    ],
)
def test_header_line_accepted(line: bytes, token: str) -> None:
    check_header_line(line, "ACCEPT", token)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"rdv/2 DIAL tok", "protocol"),
        (b"RDV/1 DIAL tok", "protocol"),
        (b"rdv/1 ACCEPT tok", "method"),  # same method as ours
        (b"rdv/1 dial tok", "method"),
        (b"rdv/1 HELLO tok", "method"),
        (b"rdv/1 DIAL other", "token"),
        (b"rdv/1 DIAL TOK", "token"),
        (b"rdv/1 DIAL tok%20", "token"),
        (b"rdv/1 DIAL tok extra", "malformed"),
        (b"rdv/1 DIAL", "malformed"),
        (b"", "malformed"),
        (b"rdv/1 DIAL t\xc3\xb6k", "non-ASCII"),
        (b"rdv/1 DIAL \xff", "non-ASCII"),
        (b"rdv/1 DIAL %zz", "bad token"),
        (b"rdv/1 DIAL tok%", "bad token"),
        (b"rdv/1 DIAL %ff", "bad token"),
        (b"rdv/1\x1cDIAL\x1ctok", "malformed"),
    ],
)
def test_misdials(line: bytes, reason: str) -> None:
    with pytest.raises(Misdial, match=reason):
        check_header_line(line, "ACCEPT", "tok")


def test_misdial_is_a_protocol_error() -> None:
    assert issubclass(Misdial, ProtocolError)


def test_build_header_line_rejects_bad_method() -> None:
    with pytest.raises(ValueError):
        build_header_line("CONFIRM", "tok")
    with pytest.raises(ValueError):
        opposite("GET")


# ----- commands


@pytest.mark.parametrize(
    "line", [b"CONTINUE", b"CONTINUE extra-arg", b"CONTINUE\r", b"  CONTINUE", b"CONTINUE\tx y z"]
)
def test_continue(line: bytes) -> None:
    assert parse_command(line) == Continue()


def test_continue_line_bytes() -> None:
    assert CONTINUE_LINE == b"CONTINUE\n"


@pytest.mark.parametrize(("addr", "line"), OTHER_LINES)
def test_reference_other_lines(addr: str, line: bytes) -> None:
    assert build_other(Addr.parse(addr)) == line
    assert parse_command(line[:-1]) == Other(Addr.parse(addr))


@pytest.mark.parametrize(
    ("line", "addr"),
    [
        (b"OTHER 1.2.3.4:5", "1.2.3.4:5"),
        (b"OTHER [2001:db8::1]:443", "[2001:db8::1]:443"),
        (b"OTHER  [::ffff:1.2.3.4]:9\r", "[::ffff:1.2.3.4]:9"),
        (b"OTHER\t10.0.0.1:65535", "10.0.0.1:65535"),
    ],
)
def test_other(line: bytes, addr: str) -> None:
    assert parse_command(line) == Other(Addr.parse(addr))


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"CONTINUEX",
        b"continue",
        b"HELLO world",
        b"OTHER",
        b"OTHER ",
        b"OTHERS 1.2.3.4:5",
        b"OTHER 1.2.3.4",
        b"OTHER ::1:5",
        b"OTHER 1.2.3.4:5 extra",
        b"OTHER \xff",
        b"\xffCONTINUE",
        b"rdv/1 DIAL tok",
    ],
)
def test_bad_commands(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_command(line)


@pytest.mark.parametrize("how", SPLITS)
def test_continue_with_data_in_the_same_segment(how: str) -> None:
    """The reference relay forwarded ``CONTINUE extra-arg\\nDATA`` as ``CONTINUE\\nDATA``."""
    lines, rest = feed_lines(split(b"CONTINUE extra-arg\nDATA", how))
    assert [parse_command(line) for line in lines] == [Continue()]
    assert rest == b"DATA"


@pytest.mark.parametrize("how", SPLITS)
def test_header_then_command_then_data(how: str) -> None:
    stream = b"rdv/1 ACCEPT tok\nCONTINUE\n\x00payload\nmore"
    buffer = LineBuffer()
    got: list[bytes] = []
    for chunk in split(stream, how):
        buffer.feed(chunk)
        while len(got) < 2 and (line := buffer.next_line()) is not None:
            got.append(line)
    check_header_line(got[0], "DIAL", "tok")
    assert parse_command(got[1]) == Continue()
    assert buffer.rest() == b"\x00payload\nmore"
    assert buffer.rest() == b""  # rest() hands the bytes over once


# ----- LineBuffer


def test_partial_line_is_kept() -> None:
    buffer = LineBuffer()
    buffer.feed(b"CONT")
    assert buffer.next_line() is None
    assert buffer.pending == 4
    buffer.feed(b"INUE")
    assert buffer.next_line() is None
    # EOF inside a line is the caller's concern: the partial data is still there.
    assert buffer.rest() == b"CONTINUE"
    assert buffer.pending == 0


def test_empty_lines() -> None:
    lines, rest = feed_lines([b"\n\nx\n"])
    assert (lines, rest) == ([b"", b"", b"x"], b"")


@pytest.mark.parametrize("how", ["whole", "bytewise", "random-1"])
def test_line_of_exactly_the_bound(how: str) -> None:
    line = b"a" * (MAX_LINE - 1) + b"\n"  # 4096 bytes with the newline
    lines, rest = feed_lines(split(line + b"tail", how))
    assert lines == [line[:-1]] and rest == b"tail"


@pytest.mark.parametrize("how", ["whole", "bytewise", "random-2"])
@pytest.mark.parametrize("data", [b"a" * MAX_LINE, b"a" * MAX_LINE + b"\n", b"b" * 10_000])
def test_line_past_the_bound(data: bytes, how: str) -> None:
    with pytest.raises(ProtocolError, match="longer than 4096"):
        feed_lines(split(data, how))


def test_custom_bound() -> None:
    assert feed_lines([b"abc\n"], max_line=4) == ([b"abc"], b"")
    with pytest.raises(ProtocolError):
        feed_lines([b"abcd"], max_line=4)


def test_long_line_after_short_ones() -> None:
    buffer = LineBuffer()
    buffer.feed(b"ok\n" + b"x" * MAX_LINE)
    assert buffer.next_line() == b"ok"
    with pytest.raises(ProtocolError):
        buffer.next_line()


# ----- address lists (section 9)


@pytest.mark.parametrize(
    ("value", "addrs"),
    [
        ("", []),
        (" \t ", []),
        ("1.2.3.4:5", ["1.2.3.4:5"]),
        ("1.2.3.4:5,[::1]:6", ["1.2.3.4:5", "[::1]:6"]),
        ("  1.2.3.4:5 ,\t[::1]:6\x0b,\x0c10.0.0.1:7 ", ["1.2.3.4:5", "[::1]:6", "10.0.0.1:7"]),
    ],
)
def test_parse_addr_list(value: str, addrs: list[str]) -> None:
    assert parse_addr_list(value) == [Addr.parse(a) for a in addrs]


@pytest.mark.parametrize(
    "value", [",", "1.2.3.4:5,", ",1.2.3.4:5", "1.2.3.4:5,,[::1]:6", "1.2.3.4:5 [::1]:6"]
)
def test_parse_addr_list_errors(value: str) -> None:
    with pytest.raises(AddrError):
        parse_addr_list(value)


def test_format_addr_list() -> None:
    addrs = [
        Addr.parse("1.2.3.4:5"),
        Addr.parse("[::ffff:1.2.3.4]:6"),
        Addr.parse("[2001:db8::1]:7"),
    ]
    assert format_addr_list(addrs) == "1.2.3.4:5, [::ffff:1.2.3.4]:6, [2001:db8::1]:7"
    assert format_addr_list([]) == ""
