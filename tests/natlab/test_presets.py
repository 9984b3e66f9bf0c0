"""Each preset gives the physically right outcome, with the payload intact on the chosen path.

The real ``rdv serve`` and two real ``rdv dial``/``rdv accept`` processes run inside the lab;
outcomes come from their ``--events`` JSONL, and the runner checks that 256 KiB piped into the
dialer come out of the accepter with the same sha256.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from rdv_core.lab._builder import SERVER4, SERVER_PORT
from rdv_core.lab._presets import get_preset
from rdv_core.lab._runner import PresetResult, RunResult, run_preset
from rdv_core.lab._spec import LabSpec

from tests.natlab.natlab_support import require_impairment

#: Runs per preset: enough to catch a flaky path, small enough for the 3-minute budget.
RUNS = 2


def _explain(run: RunResult) -> str:
    lines = [f"outcome {run.outcome}, chosen {run.chosen}, error: {run.error or '-'}"]
    for role in ("dialer", "accepter", "server"):
        lines.append(f"--- {role}")
        for ev in run.events[role]:
            cand = ev.get("candidate") or {}
            rest = {k: v for k, v in ev.items() if k not in ("type", "t", "candidate")}
            lines.append(
                f"{ev.get('t', 0) * 1000:8.1f} ms {ev.get('type')} {cand.get('addr', '')} {rest}"
            )
    lines.append("--- port remaps: " + ("; ".join(run.port_remaps) or "none"))
    return "\n".join(lines)


def zero_delay(spec: LabSpec) -> bool:
    """No delay or loss anywhere in the lab."""
    return not any(r.impairment.active for r in spec.routers) and not any(
        h.link.active for h in spec.hosts
    )


def explained_relays(runs: Sequence[RunResult]) -> list[RunResult]:
    """The relayed runs of a zero-delay test that expects ``direct``, checked.

    A relay is accepted only when a router remapped a peer's port (``port_remaps``: the
    router's port clash, docs/LAB-NOTES.md section 11), and at most one per test; any other
    run that is not direct fails with its events and remaps.
    """
    relayed = [r for r in runs if r.outcome != "direct"]
    for run in relayed:
        assert run.outcome == "relay" and run.port_remaps, _explain(run)
    assert len(relayed) <= 1, "\n\n".join(_explain(r) for r in relayed)
    for run in relayed:
        print(f"relay explained by a port clash: {'; '.join(run.port_remaps)}")
    return relayed


def _check(result: PresetResult, expect: str) -> None:
    explained: list[RunResult] = []
    if expect == "direct" and zero_delay(result.spec):
        explained = explained_relays(result.runs)
    for run in result.runs:
        if any(run is r for r in explained):
            expect_run = "relay"
        else:
            expect_run = expect
            assert run.outcome == expect, _explain(run)
        assert run.data_ok, _explain(run)
        assert run.received_bytes == run.payload_bytes > 0
        types = [e["type"] for e in run.events["server"]]
        assert "PairMatched" in types, _explain(run)
        if expect_run == "relay":
            assert run.chosen == f"{SERVER4}:{SERVER_PORT}"
            ended = [e for e in run.events["server"] if e["type"] == "RelayEnded"]
            assert ended and ended[0]["dialer_to_accepter"] == run.payload_bytes, _explain(run)
        else:
            reported = [e for e in run.events["server"] if e["type"] == "P2PReported"]
            assert reported, _explain(run)
        # Both peers' streams are there and agree on who picked what.
        assert any(e["type"] == "Picked" for e in run.events["accepter"]), _explain(run)


@pytest.mark.parametrize("name", ["cone-fw", "public-b"])
def test_direct_over_public_ipv4(name: str, rdv_command: list[str]) -> None:
    # cone-fw's second run is test_peer_exit.py's, in a lab of its own.
    result = run_preset(get_preset(name), 1 if name == "cone-fw" else RUNS, rdv_command=rdv_command)
    _check(result, "direct")
    for run in result.runs:
        assert run.chosen_space == "public4"
        assert run.chosen_family == 4


def test_public_b_dials_b_itself(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("public-b"), 1, rdv_command=rdv_command)
    _check(result, "direct")
    assert result.runs[0].chosen is not None
    assert result.runs[0].chosen.startswith("203.0.113.20:")


def test_same_lan_goes_direct_via_private_candidates(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("same-lan"), RUNS, rdv_command=rdv_command)
    _check(result, "direct")
    for run in result.runs:
        assert run.chosen_space == "private4"
        assert run.chosen is not None and run.chosen.startswith("10.0.1.3:")


def test_ipv6_goes_direct_over_ula(rdv_command: list[str]) -> None:
    result = run_preset(get_preset("ipv6"), RUNS, rdv_command=rdv_command)
    _check(result, "direct")
    for run in result.runs:
        assert run.chosen_family == 6
        assert run.chosen is not None and run.chosen.startswith("[fd00:2::2]:")


def test_dualstack_v4slow_ipv6_candidate_wins(rdv_command: list[str]) -> None:
    require_impairment()
    result = run_preset(get_preset("dualstack-v4slow"), RUNS, rdv_command=rdv_command)
    assert result.impairment in ("nfqueue", "netem")
    _check(result, "direct")
    for run in result.runs:
        assert run.chosen_family == 6, _explain(run)


def test_delay25_connects_in_about_one_slow_round_trip(rdv_command: list[str]) -> None:
    require_impairment()
    result = run_preset(get_preset("delay25"), RUNS, rdv_command=rdv_command)
    _check(result, "direct")
    for run in result.runs:
        assert run.connect_ms is not None
        assert 95.0 <= run.connect_ms < 400.0, _explain(run)


@pytest.mark.parametrize("name", ["symmetric-a", "symmetric-both", "same-lan-public"])
def test_relay_presets(name: str, rdv_command: list[str]) -> None:
    _check(run_preset(get_preset(name), RUNS, rdv_command=rdv_command), "relay")


def test_cone_rst_goes_direct(rdv_command: list[str]) -> None:
    """Both routers reset early SYNs, zero delay. Before the accepter's pre-opening dial the
    two SYNs had to leave their routers within microseconds of each other: a lottery (1-11
    of 20 direct, by load; docs/LAB-NOTES.md section 11). Now the accepter opens its router
    with a SYN the dialer's router drops without a reset, and the dialer's next redial
    passes it: direct every time, whatever the load, with the payload intact."""
    result = run_preset(get_preset("cone-rst"), 10, rdv_command=rdv_command)
    for run in result.runs:
        assert run.data_ok, _explain(run)
    direct = sum(1 for r in result.runs if r.outcome == "direct")
    print(f"cone-rst: {direct}/10 direct (load {os.getloadavg()[0]:.1f})")
    # Each relay run's accepter retries by errno tell which of the pre-opening dial's timing
    # accidents it met (docs/LAB-NOTES.md section 11, "second pass"): 104 = a SYN-ACK reset.
    relays = [
        [e.get("errno") for e in r.events.get("accepter", []) if e["type"] == "DialRetried"]
        for r in result.runs
        if r.outcome != "direct"
    ]
    remaps = [r.port_remaps for r in result.runs if r.outcome != "direct"]
    assert direct >= 9, (result.summary(), relays, remaps)
