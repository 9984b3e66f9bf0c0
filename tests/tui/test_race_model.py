"""The race model folds events into rows, a server phase and a result."""

from __future__ import annotations

from rdv_core import events as ev
from rdv_core.events import Candidate, Event
from rdv_tui.race_model import Mark, RaceModel, RowState, ip_family

OBS = Candidate(1, "203.0.113.99:52000", "public4", "observed")
RELAY = Candidate(2, "203.0.113.10:8080", "relay", "relay")


def test_fixture_race_ends_in_the_expected_states(race_events: list[Event]) -> None:
    model = RaceModel()
    model.apply_all(race_events)
    states = {cid: row.state for cid, row in model.rows.items()}
    assert states == {
        1: RowState.PICKED,
        2: RowState.FAILED,
        3: RowState.FAILED,
        4: RowState.FAILED,
        5: RowState.SKIPPED,
        6: RowState.DISCARDED,
        7: RowState.DISCARDED,
    }
    assert model.rows[1].retries == 3
    assert model.rows[1].state_text == "★ picked (after 3 retries): 671 ms"
    assert model.rows[3].detail.startswith("misdial")
    assert model.rows[4].state_text == "failed: unreachable (errno 101) (no IPv6 route)"
    assert model.result is not None and model.result.ok and not model.result.is_relay
    assert model.result.candidate == race_events[6].candidate  # type: ignore[attr-defined]
    assert model.server.lobby_s == 0.3885
    assert model.server.observed_addr == "198.51.100.7:41000"
    assert model.t_end == race_events[-1].t
    assert model.events == race_events


def test_each_event_reports_only_what_it_changed() -> None:
    model = RaceModel()
    assert model.apply(ev.AttemptStarted(0.0, "DIAL", "http://x/", "loopback4", "first")).header
    change = model.apply(ev.DialStarted(0.1, OBS))
    assert change.rows == (1,) and not change.header and not change.result
    assert model.rows[1].state is RowState.DIALING
    change = model.apply(ev.DialRetried(0.2, OBS, 2, "refused", 111))
    assert model.rows[1].state_text == "retrying \u00d72: refused (errno 111)"
    model.apply(ev.CandidateConnected(0.3, OBS))
    model.apply(ev.HandshakeOk(0.31, OBS))
    assert [m for _, m in model.rows[1].marks] == [
        Mark.START,
        Mark.RETRY,
        Mark.CONNECTED,
        Mark.HANDSHAKE,
    ]
    assert model.apply(ev.Picked(0.32, OBS, False, 0.32)).result


def test_relay_pick_and_failed_attempt() -> None:
    model = RaceModel()
    model.apply(ev.RelayReady(0.1, RELAY))
    model.apply(ev.Picked(1.1, RELAY, True, 1.1))
    assert model.result is not None and model.result.is_relay
    failed = RaceModel()
    failed.apply(ev.ServerRejected(0.05, 404, "Not Found", "no peer\n"))
    change = failed.apply(ev.AttemptFailed(0.06, "rejected", "404"))
    assert change.result and failed.result is not None and not failed.result.ok
    assert failed.result.reason == "rejected: 404"
    assert failed.server.rejected == "404 Not Found: no peer"


def test_a_lost_lobby_conn_and_its_rejoin_are_no_refusal() -> None:
    """The app's header says the server went away and the attempt rejoins (PROTOCOL.md
    18), where it said "server refused: 503 ..." of a server restarting."""
    model = RaceModel()
    model.apply(ev.ServerRejected(2.0, 503, "Service Unavailable", "rdv server shutting down"))
    model.apply(ev.ServerLost(2.0, "503 rdv server shutting down", 0.5, 1, 6))
    assert model.server.rejected == ""
    assert model.server.rejoin == (
        "the rdv server went away while we waited (503 rdv server shutting down): "
        "rejoining in 0.5 s (1/6)"
    )
    model.apply(ev.LobbyRejoined(2.6, 1, 0.6))
    assert model.server.rejoin.startswith("rejoined the lobby 0.6 s later")


def test_session_events_are_ignored_by_the_race() -> None:
    model = RaceModel()
    assert model.apply(ev.ChatReceived(1.0, "hi")).rows == ()
    assert model.events == []


def test_ip_family() -> None:
    assert ip_family("1.2.3.4:5") == "v4"
    assert ip_family("[fe80::1%eth0]:5") == "v6"
    assert ip_family("[::1]:80") == "v6"
    assert ip_family("relay.example:80") == "-"


def test_progress_messages_merge_but_others_do_not() -> None:
    from rdv_tui.app import RdvApp

    def progress(transfer_id: int, done: int) -> RdvApp.CoreEvent:
        return RdvApp.CoreEvent(ev.FileProgress(1.0, transfer_id, "in", done, 100, 5.0), "session")

    assert progress(1, 50).can_replace(progress(1, 10))
    assert not progress(1, 50).can_replace(progress(2, 10))
    chat = RdvApp.CoreEvent(ev.ChatReceived(1.0, "hi"), "session")
    assert not chat.can_replace(progress(1, 10))
    assert not progress(1, 50).can_replace(chat)


def test_recorded_lab_races_replay() -> None:
    """The real races in screenshots/races/ (recorded with ``rdv lab run --json``) still load."""
    from pathlib import Path

    from rdv_tui.app import load_race

    races = sorted((Path(__file__).parents[2] / "screenshots" / "races").glob("*.jsonl"))
    assert races
    for path in races:
        model = RaceModel()
        model.apply_all(load_race(path))
        assert model.result is not None and model.result.ok, path
        assert all(row.state.is_final for row in model.rows.values()), path


def test_the_peers_candidates_merge_onto_our_axis() -> None:
    relay = Candidate(0, "203.0.113.10:7000", "relay", "relay")
    mine = Candidate(1, "203.0.113.12:4000", "public4", "observed")
    theirs = Candidate(1, "203.0.113.11:5000", "public4", "observed")
    model = RaceModel()
    model.apply_all(
        [
            ev.ServerResponded(0.5, "203.0.113.11:5000", ("203.0.113.12:4000",), 0.4),
            ev.DialStarted(0.51, mine),
            ev.Picked(0.6, mine, False, 0.6),
        ]
    )
    peer = [
        ev.ServerResponded(2.0, "203.0.113.12:4000", ("203.0.113.11:5000",), 1.9),
        ev.RelayReady(2.0, relay),
        ev.DialStarted(2.01, theirs),
        ev.DialRetried(2.02, theirs, 2, "refused", 111),
        ev.HandshakeOk(2.09, theirs),
        ev.Picked(2.1, theirs, False, 2.1),
    ]
    added = model.merge_peer(peer)
    assert added == (1001,)
    row = model.rows[1001]
    assert str(row.candidate.origin) == "peer observed" and row.state == RowState.PICKED
    assert row.handshake_t is not None and abs(row.handshake_t - 0.59) < 1e-9  # 2.0 -> 0.5
    assert model.result is not None and model.result.candidate == mine  # the result is ours
    assert all(getattr(e, "candidate", None) != theirs for e in model.events)  # export: ours
