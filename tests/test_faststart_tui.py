"""Fast start on the dashboard: the waterfall keeps the relay row until it is retired,
the background race's rows, and the switch (docs/PROTOCOL.md section 16)."""

from __future__ import annotations

from rdv_core import events as ev
from rdv_tui.race_model import RaceModel, RowState

RELAY = ev.Candidate(1, "10.0.0.1:8080", "relay", "relay")
DIRECT = ev.Candidate(4, "203.0.113.7:4000", "public4", "observed")


def test_the_waterfall_shows_the_relay_first_then_the_switch() -> None:
    model = RaceModel()
    model.apply_all(
        [
            ev.RelayReady(0.010, RELAY),
            ev.FastStartNegotiated(0.010, False),
            ev.Picked(0.011, RELAY, True, 0.011),
            ev.FastStartNegotiated(0.030, True),
            ev.UpgradeStarted(0.030, (DIRECT.addr,)),
            ev.UpgradeAttempt(0.050, 1, 0.040),
            ev.DialStarted(0.070, DIRECT),
            ev.CandidateConnected(0.090, DIRECT),
            ev.HandshakeOk(0.092, DIRECT),
            ev.Picked(0.093, DIRECT, False, 0.093),
            ev.Upgraded(0.095, DIRECT, DIRECT.addr, 0.084, 1),
            ev.RelayRetired(0.140, 0.045),
        ]
    )
    relay, direct = model.rows[RELAY.id], model.rows[DIRECT.id]
    assert relay.state == RowState.DISCARDED and "retired" in relay.detail
    assert relay.end_t == 0.140  # the relay carried the stream until then
    assert direct.state == RowState.PICKED and "moved here 84 ms" in direct.detail
    assert model.result is not None and not model.result.is_relay
    assert any(isinstance(e, ev.Upgraded) for e in model.events)  # kept for export


def test_a_final_failure_is_noted_on_the_relay_row() -> None:
    model = RaceModel()
    model.apply_all(
        [
            ev.RelayReady(0.010, RELAY),
            ev.Picked(0.011, RELAY, True, 0.011),
            ev.UpgradeFailed(3.2, 5, "no conn to the peer could be used", True),
        ]
    )
    relay = model.rows[RELAY.id]
    assert relay.state == RowState.PICKED and "stays here" in relay.detail
    assert model.result is not None and model.result.is_relay
