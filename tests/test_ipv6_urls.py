"""Server URLs with IPv6 hosts, as users write them (the parser every command shares)."""

from __future__ import annotations

import pytest

from rdv_core.wire import parse_server_url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # Old: "invalid port in 'http://2001:db8::1:8080'".
        ("http://2001:db8::1:8080", "takes brackets: http://[2001:db8::1]:8080 (got "),
        ("http://::1:8080/rdv", "takes brackets: http://[::1]:8080/rdv (got "),
        ("http://2001:db8::1", "takes brackets: http://[2001:db8::1] (got "),
        # Old: "... got '[2001:db8::1]:8080'" and no word of what to write.
        ("[2001:db8::1]:8080", "got '[2001:db8::1]:8080' (write http://[2001:db8::1]:8080)"),
    ],
)
def test_an_ipv6_url_written_wrong_says_how_to_write_it(url: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_server_url(url)
    assert says in str(caught.value)


def test_a_zone_in_rfc_6874_form_is_the_zone() -> None:
    """``%25eth0`` (RFC 6874, as Go writes it) is ``%eth0``; old: the host stayed
    ``fe80::1%25eth0`` and the connect failed "Unknown error -2". The zone is kept in what
    users read, never in ``Host``."""
    for url in ("http://[fe80::1%25eth0]:8080/rdv", "http://[fe80::1%eth0]:8080/rdv"):
        server = parse_server_url(url)
        assert server.host == "fe80::1%eth0"
        assert str(server) == "http://[fe80::1%eth0]:8080/rdv"
        assert server.host_header == "[fe80::1]:8080"
