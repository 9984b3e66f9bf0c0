"""The doctor with several uplinks (docs/PROTOCOL.md 15.8): the prediction picks the pair of
paths that can go direct and names its uplink; the report carries each uplink's findings."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import time

import pytest

from rdv_core.client._uplinks import Uplink
from rdv_core.doctor import Doctor, Report, ReportError, predict, render_text, summary
from rdv_core.doctor._dialbacks import DialBackTurns
from rdv_core.doctor._uplinks import MAX_DOCTOR_UPLINKS, plan_doctor_paths
from rdv_core.lab._doctor_table import doctor_row

from tests.doctor_support import probe_server
from tests.test_doctor_units import CONE_DROP, PUBLIC, SYMMETRIC, _report

PEER = {**CONE_DROP, "observed": "9.9.9.2:1"}


def _paths(first: Report, *extra: tuple[str, Report]) -> Report:
    return dataclasses.replace(
        first,
        uplink="wlan0 10.0.1.2",
        uplinks=tuple(dataclasses.replace(r, uplink=name) for name, r in extra),
    )


def test_the_uplink_that_can_go_direct_decides_and_is_named() -> None:
    # The wifi is symmetric (impossible against a cone peer), the LTE uplink is a cone.
    ours = _paths(_report(**SYMMETRIC), ("wwan0 10.64.0.7", _report(**CONE_DROP)))
    prediction = predict(ours, _report(**PEER))
    assert prediction.expect == "direct"
    assert prediction.reason.startswith("via our uplink wwan0 10.64.0.7: both NATs keep")
    # The old answer, from the default route alone: impossible.
    assert predict(dataclasses.replace(ours, uplinks=()), _report(**PEER)).expect == "impossible"


def test_equal_paths_pick_the_one_that_reaches_more_servers() -> None:
    """The lab's two-uplinks-nat: both uplinks are cone + drop, but the wifi lets out only the
    server (it reached 1 of 2): the LTE path is the one that dials the peer."""
    lte = _report(**CONE_DROP)
    second = dataclasses.replace(lte.servers[0], url="http://2.2.2.2:7000")
    lte = dataclasses.replace(lte, servers=(*lte.servers, second))
    wifi = _report(**CONE_DROP)
    wifi = dataclasses.replace(
        wifi,
        servers=(
            *wifi.servers,
            dataclasses.replace(second, tcp4=dataclasses.replace(second.tcp4, value=False)),
        ),
    )
    prediction = predict(_paths(wifi, ("wwan0 10.0.3.100", lte)), _report(**PEER))
    assert prediction.expect == "direct"
    assert prediction.reason.startswith("via our uplink wwan0 10.0.3.100: both NATs keep")
    assert prediction.reason.endswith(
        "(wlan0 10.0.1.2 reached only 1 of 2 servers: its network lets out only some destinations)"
    )


def test_a_public_uplink_beats_a_natted_default_route() -> None:
    ours = _paths(_report(**CONE_DROP), ("wwan0 203.0.113.30", _report(**PUBLIC)))
    prediction = predict(ours, _report(**{**PUBLIC, "observed": "9.9.9.2:1"}))
    assert prediction.reason.startswith("via our uplink wwan0 203.0.113.30: we are on the")


def test_the_peer_s_uplink_is_named_too() -> None:
    theirs = _paths(
        _report(**{**SYMMETRIC, "observed": "9.9.9.2:1"}), ("eth1 5.5.5.5", _report(**PUBLIC))
    )
    prediction = predict(_report(**SYMMETRIC), theirs)
    assert prediction.expect == "direct"
    assert prediction.reason.startswith("via the peer's uplink eth1 5.5.5.5:")


def test_one_path_each_reads_as_before() -> None:
    prediction = predict(_report(**CONE_DROP), _report(**PEER))
    assert not prediction.reason.startswith("via")


def test_uplinks_round_trip_and_are_bounded() -> None:
    ours = _paths(_report(**SYMMETRIC), ("wwan0 10.64.0.7", _report(**CONE_DROP)))
    data = json.loads(json.dumps(ours.to_json()))
    back = Report.from_json(data)
    assert [p.uplink for p in back.paths] == ["wlan0 10.0.1.2", "wwan0 10.64.0.7"]
    assert back.uplinks[0].value("mapping") == "endpoint-independent"
    # An older rdv's report has neither field: one path.
    del data["uplink"], data["uplinks"]
    assert Report.from_json(data).paths == (Report.from_json(data),)
    # A peer cannot nest reports without end, nor send more than the bound.
    nested = ours.to_json()
    nested["uplinks"][0]["uplinks"] = [ours.uplinks[0].to_json()]
    with pytest.raises(ReportError):
        Report.from_json(nested)
    many = ours.to_json()
    many["uplinks"] = many["uplinks"] * (MAX_DOCTOR_UPLINKS + 2)
    with pytest.raises(ReportError):
        Report.from_json(many)


def test_the_text_shows_each_uplink_side_by_side() -> None:
    ours = _paths(_report(**SYMMETRIC), ("wwan0 10.64.0.7", _report(**CONE_DROP)))
    text = render_text(ours, 200)
    assert "uplinks (the race dials from each):" in text
    lines = [line for line in text.splitlines() if "servers reached" in line]
    assert lines[0].strip().startswith("wlan0 10.0.1.2  NAT yes  mapping address-and-port")
    assert lines[1].strip().startswith("wwan0 10.64.0.7  NAT yes  mapping endpoint-independent")
    assert "uplinks" not in render_text(_report(**CONE_DROP), 200)


UP = [
    Uplink("wlan0", ipaddress.ip_address("10.0.1.2")),
    Uplink("wwan0", ipaddress.ip_address("10.64.0.7")),
]


def test_interface_and_source_measure_only_those() -> None:
    paths = plan_doctor_paths(["http://1.1.1.1:7000"], ["wwan0"], [], UP)
    assert paths.first == UP[1] and paths.extra == () and paths.label == "wwan0 10.64.0.7"
    paths = plan_doctor_paths(["http://1.1.1.1:7000"], [], ["10.0.1.2"], UP)
    assert paths.first == UP[0] and paths.extra == ()
    with pytest.raises(ValueError, match="no usable interface 'eth9'"):
        plan_doctor_paths(["http://1.1.1.1:7000"], ["eth9"], [], UP)


def test_a_link_local_source_is_refused_as_no_uplink() -> None:
    """``--source fe80::2%eth0`` (the doctor's and the race's words, one function). Old: "no
    usable local address fe80::2%eth0", as if this machine lacked the address."""
    for source in ("fe80::2%eth0", "169.254.3.4"):
        with pytest.raises(
            ValueError, match=f"{source} is link-local: a link-local address is not an uplink"
        ):
            plan_doctor_paths(["http://1.1.1.1:7000"], [], [source], UP)


def test_no_uplink_is_measured_for_a_server_on_loopback() -> None:
    assert (
        plan_doctor_paths(["http://127.0.0.1:7000", "http://localhost:7001"], found=UP).extra == ()
    )


def test_the_summary_tells_each_uplink() -> None:
    ours = _paths(_report(**CONE_DROP), ("wwan0 203.0.113.30", _report(**PUBLIC)))
    said = summary(ours)
    assert said.startswith("wlan0 10.0.1.2: Your router keeps ports"), said
    assert "wwan0 203.0.113.30: " in said, said
    assert not summary(_report(**CONE_DROP)).startswith("wlan0")


def test_lab_doctor_rows_list_a_host_s_uplinks() -> None:
    cells = [
        "two-uplinks",
        "EI/drop/hp no",
        "no NAT/open/hp -",
        "ok",
        "direct public4",
        "1/1",
        "yes",
    ]
    note = "A's uplinks: eth0 10.0.1.2 EI/drop/hp no; eth1 203.0.113.30 no NAT/open/hp -"
    lines = doctor_row(cells, [], "via our uplink eth1 203.0.113.30: ...", 80, notes=[note])
    assert lines[-2] == "    " + note
    assert lines[-1].startswith("    why: via our uplink eth1")


async def test_two_uplinks_behind_one_public_address_both_get_their_dial_back() -> None:
    """Two runs from one address (``lo 127.0.0.1``, as two uplinks behind one NAT are seen by
    the server) at once, sharing the turns as one run's uplinks do; a real server with
    dial-back. Old: the second said "the server refused the dial-back (429: b'one dial-back
    at a time per address')"; now each waits for the other's (an open port: milliseconds)."""
    lo = Uplink("lo", ipaddress.ip_address("127.0.0.1"))
    turns = DialBackTurns()
    async with probe_server("native") as env:
        started = time.perf_counter()
        runs = [Doctor([env.url], uplink=lo, dial_back_turns=turns).run() for _ in range(2)]
        reports = await asyncio.gather(*runs)
        took = time.perf_counter() - started
    assert [r.value("filtering") for r in reports] == ["open", "open"], [
        r.finding("filtering") for r in reports
    ]
    assert env.service.dial_backs == 2 and took < 2.0
