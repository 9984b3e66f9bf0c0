"""The kernel's RTT figures of a real loopback conn (``rdv_core.tcpinfo``)."""

from __future__ import annotations

import socket
import sys

import pytest

from rdv_core.tcpinfo import tcp_min_rtt, tcp_rtt

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="struct tcp_info is Linux's")


def test_min_rtt_is_read_from_its_own_field() -> None:
    # After a few round trips both figures are small and positive, and the minimum is at
    # most the smoothed RTT: a wrong offset would read a counter (segments, bytes) instead.
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            for _ in range(20):
                client.sendall(b"x" * 100)
                peer.recv(100)
                peer.sendall(b"y")
                client.recv(1)
            smoothed, minimum = tcp_rtt(client), tcp_min_rtt(client)
            assert smoothed is not None and minimum is not None
            assert 0 < minimum <= smoothed < 0.05


def test_no_figure_for_what_is_not_a_tcp_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert tcp_min_rtt(udp) is None
    assert tcp_min_rtt(object()) is None
