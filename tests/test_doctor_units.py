"""The doctor's pure parts: classification, prediction, the report's JSON and the probe bodies."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from rdv_core.doctor import Finding, Report, ReportError, Sample, ServerCheck, predict, render_text
from rdv_core.doctor._classify import (
    classify_allocation,
    classify_filtering,
    classify_loss,
    classify_mapping,
    classify_nat,
)
from rdv_core.doctor._report import FINDINGS, not_measured
from rdv_core.wire import (
    Addr,
    AddrSpace,
    DialBack,
    ProtocolError,
    parse_dial_back,
    parse_directory,
    parse_nonce,
    parse_observed,
    parse_spaces,
)

LOCAL = "10.0.1.2:40000"


def _samples(observed: dict[str, str]) -> list[Sample]:
    return [Sample(LOCAL, server, obs, 1.0) for server, obs in observed.items()]


@pytest.mark.parametrize(
    ("observed", "mapping"),
    [
        (
            {
                "1.1.1.1:7000": "9.9.9.9:40000",
                "1.1.1.1:7001": "9.9.9.9:40000",
                "2.2.2.2:7000": "9.9.9.9:40000",
            },
            "endpoint-independent",
        ),
        (
            {"1.1.1.1:7000": "9.9.9.9:1", "1.1.1.1:7001": "9.9.9.9:2", "2.2.2.2:7000": "9.9.9.9:3"},
            "address-and-port-dependent",
        ),
        (
            {"1.1.1.1:7000": "9.9.9.9:1", "1.1.1.1:7001": "9.9.9.9:1", "2.2.2.2:7000": "9.9.9.9:5"},
            "address-dependent",
        ),
        (
            {"1.1.1.1:7000": "9.9.9.9:1", "1.1.1.1:7001": "9.9.9.9:2", "2.2.2.2:7000": "9.9.9.9:1"},
            "port-dependent",
        ),
        ({"1.1.1.1:7000": "9.9.9.9:1", "1.1.1.1:7001": "9.9.9.9:2"}, "port-dependent"),
        ({"1.1.1.1:7000": LOCAL, "1.1.1.1:7001": LOCAL}, "none"),
        ({"1.1.1.1:7000": "9.9.9.9:1"}, None),
        ({}, None),
    ],
)
def test_mapping(observed: dict[str, str], mapping: str | None) -> None:
    finding = classify_mapping(_samples(observed))
    assert finding.value == mapping
    assert finding.reason


def test_nat_and_loss() -> None:
    assert classify_nat(_samples({"1.1.1.1:7000": "9.9.9.9:1"})).value is True
    assert classify_nat(_samples({"1.1.1.1:7000": LOCAL})).value is False
    assert classify_nat([]).value is None
    slow = [Sample(LOCAL, "1.1.1.1:7000", None, 1003.0), Sample(LOCAL, "1.1.1.1:7001", None, 2.0)]
    assert classify_loss(slow).value is True
    assert classify_loss(slow[1:]).value is False
    assert classify_loss(slow[1:]).reason == "1 connect, it needed no retransmission"


@pytest.mark.parametrize(
    ("pairs", "value", "delta"),
    [
        ([(5000, 5000), (5002, 5002), (5004, 5004)], "preserved", None),
        ([(5000, 20000), (5002, 20001), (5004, 20002), (5006, 20003)], "sequential", 1),
        ([(5000, 20000), (5002, 20010), (5004, 20020)], "sequential", 10),
        ([(5000, 31234), (5002, 1201), (5004, 50000)], "random", None),
        ([(5000, 31234), (5002, 1201)], None, None),
    ],
)
def test_allocation(pairs: list[tuple[int, int]], value: str | None, delta: int | None) -> None:
    fresh = [Sample(f"10.0.1.2:{a}", "1.1.1.1:7000", f"9.9.9.9:{b}", 1.0) for a, b in pairs]
    finding, got_delta = classify_allocation(fresh)
    assert (finding.value, got_delta) == (value, delta)


@pytest.mark.parametrize(
    ("result", "nonce", "value"),
    [
        ("syn-ack", True, "open"),
        ("syn-ack", False, "intercepted"),
        ("rst", False, "rst"),
        ("icmp", False, "icmp"),
        ("timeout", False, "drop"),
        ("error", False, None),
    ],
)
def test_filtering(result: Any, nonce: bool, value: str | None) -> None:
    back = DialBack(Addr.parse("9.9.9.9:1"), result, None, 1500.0, 4444)
    assert classify_filtering(back, nonce, "").value == value
    assert classify_filtering(None, False, "no dial-back").reason == "no dial-back"


def _report(**values: Any) -> Report:
    """A report with the given finding values (others not measured)."""
    observed = values.pop("observed", "9.9.9.1:40000")
    findings = {name: not_measured("test") for name in FINDINGS}
    for name, value in values.items():
        findings[name] = Finding(value, "test")
    server = ServerCheck(
        "http://1.1.1.1:7000",
        Finding(True, "ok"),
        not_measured("-"),
        not_measured("-"),
        1.0,
        observed,
        (7001,),
        Finding(True, "ok"),
        findings["filtering"],
    )
    return Report(
        40000,
        10.0,
        (server,),
        (Sample(LOCAL, "1.1.1.1:7000", observed, 1.0),),
        (),
        findings,
        {"private4": ("10.0.1.2",)},
    )


CONE_DROP = {"nat": True, "mapping": "endpoint-independent", "filtering": "drop"}
CONE_RST = {"nat": True, "mapping": "endpoint-independent", "filtering": "rst"}
SYMMETRIC = {"nat": True, "mapping": "address-and-port-dependent", "filtering": "drop"}
PUBLIC = {"nat": False, "mapping": "none", "filtering": "open"}


@pytest.mark.parametrize(
    ("ours", "theirs", "spaces", "expect", "winner"),
    [
        (CONE_DROP, {**CONE_DROP, "observed": "9.9.9.2:1"}, "default", "direct", "public4"),
        (CONE_RST, {**CONE_RST, "observed": "9.9.9.2:1"}, "default", "possible", "public4"),
        (SYMMETRIC, {**CONE_DROP, "observed": "9.9.9.2:1"}, "default", "impossible", "relay"),
        (SYMMETRIC, {**SYMMETRIC, "observed": "9.9.9.2:1"}, "default", "impossible", "relay"),
        (SYMMETRIC, {**PUBLIC, "observed": "9.9.9.2:1"}, "default", "direct", "public4"),
        (
            {**CONE_DROP, "hairpin": False},
            {**CONE_DROP, "hairpin": False},
            "default",
            "direct",
            "private4",
        ),
        (
            {**CONE_DROP, "hairpin": False},
            {**CONE_DROP, "hairpin": False},
            "public4",
            "impossible",
            "relay",
        ),
        (
            {**CONE_DROP, "loss": True},
            {**CONE_DROP, "observed": "9.9.9.2:1"},
            "default",
            "possible",
            "public4",
        ),
        ({"nat": True}, {**CONE_DROP, "observed": "9.9.9.2:1"}, "default", "possible", "public4"),
        (CONE_DROP, {**CONE_DROP, "observed": "9.9.9.2:1"}, "none", "impossible", "relay"),
    ],
)
def test_prediction(
    ours: dict[str, Any], theirs: dict[str, Any], spaces: str, expect: str, winner: str
) -> None:
    enabled = AddrSpace.NONE if spaces == "none" else parse_spaces(spaces)
    prediction = predict(_report(**ours), _report(**theirs), enabled)
    assert (prediction.expect, prediction.winner) == (expect, winner), prediction.reason
    assert prediction.agrees_with("direct") == (expect != "impossible")
    assert prediction.agrees_with("relay") == (expect != "direct")
    assert not prediction.agrees_with("failed")


def test_report_round_trip_and_text() -> None:
    report = _report(**CONE_DROP, hairpin=False, allocation="random")
    data = json.loads(json.dumps(report.to_json()))
    assert data["version"] == 1 and data["mapping"] == {
        "value": "endpoint-independent",
        "reason": "test",
    }
    again = Report.from_json(data)
    assert again.to_json() == report.to_json()
    text = render_text(report)
    assert "keeps ports and drops early SYNs" in text and "mapping" in text


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"mapping": {"value": "sideways", "reason": "x"}},
        {"nat": {"value": [1], "reason": "x"}},
        {"hairpin": {"value": True, "reason": "x" * 5000}},
        {"samples": [{}] * 100},
        {"local_port": -1},
        {"servers": "no"},
        {"local_addrs": {"public4": ["x"] * 100}},
    ],
)
def test_report_from_json_is_strict(change: dict[str, Any]) -> None:
    data = {**_report(**CONE_DROP).to_json(), **change}
    with pytest.raises(ReportError):
        Report.from_json(data)


def test_probe_bodies() -> None:
    ok = parse_observed(b'{"v":1,"observed":"1.2.3.4:5","port":7000,"upgrade":"rdv-probe/1"}')
    assert str(ok.observed) == "1.2.3.4:5" and ok.port == 7000
    assert parse_directory(b'{"v":1,"probe_ports":[7001],"dial_back":false}').probe_ports == (7001,)
    back = parse_dial_back(
        b'{"v":1,"target":"1.2.3.4:5","result":"rst","errno":111,"elapsed_ms":0.5,"from_port":9}'
    )
    assert back.result == "rst" and back.errno == 111
    for bad in (
        b"not json",
        b"[]",
        b'{"v":2,"observed":"1.2.3.4:5","port":7000}',
        b'{"v":1,"observed":"1.2.3.4","port":7000}',
        b'{"v":1,"observed":"1.2.3.4:5","port":70000}',
        b'{"v":1,"observed":"1.2.3.4:5","port":true}',
        b"{" + b" " * 5000 + b"}",
    ):
        with pytest.raises(ProtocolError):
            parse_observed(bad)
    for bad in (b'{"v":1,"probe_ports":[0],"dial_back":false}', b'{"v":1,"probe_ports":[1]}'):
        with pytest.raises(ProtocolError):
            parse_directory(bad)
    with pytest.raises(ProtocolError):
        parse_dial_back(
            b'{"v":1,"target":"1.2.3.4:5","result":"maybe","elapsed_ms":1,"from_port":9}'
        )


def test_nonce() -> None:
    assert parse_nonce("nonce=" + "ab" * 8) == "ab" * 8
    for bad in (
        "",
        "nonce=",
        "nonce=AB" + "a" * 14,
        "nonce=zz" * 8,
        "target=1.2.3.4:5&nonce=" + "a" * 16,
    ):
        with pytest.raises(ProtocolError):
            parse_nonce(bad)


@pytest.mark.parametrize(
    ("ours", "expect", "reason"),
    [
        # The lab's host-fw-drop / host-fw-reject: a public address behind its own firewall.
        (
            {"nat": False, "mapping": "none", "filtering": "drop"},
            "direct",
            "the peer's NAT keeps its ports and we have no NAT, and both sides drop early SYNs "
            "silently: the two SYNs meet in a simultaneous open",
        ),
        (
            {"nat": False, "mapping": "none", "filtering": "rst"},
            "possible",
            "the peer's NAT keeps its ports and we have no NAT, but our firewall answers early "
            "SYNs with a reset: the simultaneous open is a timing lottery that quick redials "
            "usually win",
        ),
    ],
)
def test_a_side_without_nat_is_not_called_a_nat(
    ours: dict[str, Any], expect: str, reason: str
) -> None:
    prediction = predict(_report(**ours), _report(**{**CONE_DROP, "observed": "9.9.9.2:1"}))
    assert (prediction.expect, prediction.reason) == (expect, reason)


def test_an_ipv6_firewall_that_resets_makes_ipv6_a_lottery() -> None:
    # The lab's ipv6 preset with reject rules: both sides have open IPv6 without NAT, and
    # without the measured IPv6 filtering the prediction was a sure "direct".
    six = {"ipv6": True, "nat6": False}
    quiet = predict(_report(**six, filtering6="drop"), _report(**six, observed="9.9.9.2:1"))
    assert (quiet.expect, quiet.winner) == ("direct", "private6")
    rst = predict(_report(**six, filtering6="rst"), _report(**six, observed="9.9.9.2:1"))
    assert (rst.expect, rst.winner) == ("possible", "private6")
    assert "our IPv6 firewall answers early SYNs with a reset" in rst.reason
    # A direct IPv4 path wins over the IPv6 lottery.
    both = predict(
        _report(**six, **CONE_DROP, filtering6="icmp"),
        _report(**six, **CONE_DROP, filtering6="rst", observed="9.9.9.2:1"),
    )
    assert (both.expect, both.winner) == ("direct", "public4")


def test_a_report_of_an_older_rdv_without_filtering6_still_reads() -> None:
    # The peer's diagnosis frame of the previous rdv has no "filtering6": not measured.
    data = _report(**CONE_DROP).to_json()
    del data["filtering6"]
    again = Report.from_json(data)
    assert again.value("filtering6") is None
    assert "older rdv" in again.finding("filtering6").reason
    assert again.value("filtering") == "drop"


def test_the_head_line_reads_a_short_run_in_ms() -> None:
    # A doctor against a near server takes tens of ms: the head line said "0.0 s".
    report = _report(**CONE_DROP)
    assert render_text(report).splitlines()[0] == "rdv doctor: 1 server, port 40000, 10 ms"
    slow = dataclasses.replace(report, duration_ms=1640.0)
    assert render_text(slow).splitlines()[0] == "rdv doctor: 1 server, port 40000, 1.6 s"
