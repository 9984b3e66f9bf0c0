"""The pre-opening dial on real loopback sockets (its effect between routers: tests/natlab).

On loopback the destination is the first hop that processes the timestamp option, so it
counts the overflow to 15 and delivers the SYN: the dial is an ordinary one, which lets us
check the socket-level contract here (option set for the first SYN only, the socket left
as a pending dial, refusals reported).
"""

from __future__ import annotations

import errno
import socket
import sys
import time

import pytest

from rdv_core.client._dialer import should_preopen
from rdv_core.client._preopen import QUICK_REFUSAL, TIMESTAMP_OVERFLOW_14, preopen_dial
from rdv_core.wire import Addr

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux option handling")


def _wait(sock: socket.socket, to: tuple[str, int]) -> int:
    deadline = time.monotonic() + 2.0
    code = errno.EALREADY
    while time.monotonic() < deadline:
        code = sock.connect_ex(to)
        if code not in (errno.EALREADY, errno.EINPROGRESS):
            return code
        time.sleep(0.002)
    return code


def _dial_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_only_quick_refusals_of_public_ipv4_addresses_call_for_it() -> None:
    quick = QUICK_REFUSAL / 2
    assert should_preopen(Addr.parse("203.0.113.12:4000"), quick) is (sys.platform == "linux")
    assert not should_preopen(Addr.parse("203.0.113.12:4000"), QUICK_REFUSAL * 2)
    assert not should_preopen(Addr.parse("[2001:db8::1]:4000"), quick)
    assert not should_preopen(Addr.parse("10.0.2.2:4000"), quick)
    assert not should_preopen(Addr.parse("127.0.0.1:4000"), quick)


def test_the_option_is_full_with_the_overflow_count_at_14() -> None:
    kind, length, pointer, flags = TIMESTAMP_OVERFLOW_14
    assert (kind, length) == (68, 4)
    assert pointer > length  # full: no hop can add a timestamp, each counts the overflow
    assert flags >> 4 == 14 and flags & 0xF == 0


@linux_only
def test_it_is_a_pending_dial_that_connects_with_the_option_cleared() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    to = listener.getsockname()
    sock = _dial_socket()
    try:
        assert preopen_dial(sock, to) in (errno.EINPROGRESS, 0)
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40) == b""
        assert _wait(sock, to) in (0, errno.EISCONN)
        conn, _ = listener.accept()
        conn.close()
    finally:
        sock.close()
        listener.close()


@linux_only
def test_a_refusal_is_reported_and_the_socket_can_dial_again() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    to = probe.getsockname()
    probe.close()
    sock = _dial_socket()
    try:
        # The reset may be processed inside connect() or just after it.
        assert preopen_dial(sock, to) in (errno.ECONNREFUSED, errno.EINPROGRESS)
        assert _wait(sock, to) == errno.ECONNREFUSED
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, 40) == b""
        assert sock.connect_ex(to) in (errno.ECONNREFUSED, errno.EINPROGRESS)  # dials again
    finally:
        sock.close()
