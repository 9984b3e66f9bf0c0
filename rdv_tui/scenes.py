"""Fixed, realistic scenes for the snapshot tests and the screenshots script.

A scene is a list of real events (the same types the core emits) with fixed
timestamps, fed to the real screens: the result is deterministic, so snapshots can
pin the look, and the screenshots show a race across NATs that loopback cannot show.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input

from rdv_core import events as ev
from rdv_core.events import Candidate
from rdv_core.server import PairPath, PairStats, ServerStats
from rdv_tui.app import AppConfig, RdvApp
from rdv_tui.screens.session import SessionScreen
from rdv_tui.widgets.link_strip import LinkStrip
from rdv_tui.widgets.server_view import ServerLog


def sample_race() -> list[ev.Event]:
    """A dialer behind a home router: retries against RSTs, a misdial, a p2p win.

    ``tests/tui/data/race_p2p.jsonl`` is this race as JSONL (a test keeps them equal).
    """
    obs = Candidate(1, "203.0.113.99:52000", "public4", "observed")
    priv4 = Candidate(2, "10.0.0.5:52000", "private4", "self")
    priv6 = Candidate(3, "[fd00::5]:52000", "private6", "self")
    pub6 = Candidate(4, "[2001:db8:40::5]:52000", "public6", "self")
    link6 = Candidate(5, "[fe80::5]:52000", "link6", "self")
    inbound = Candidate(6, "203.0.113.99:52000", "public4", "inbound")
    relay = Candidate(7, "203.0.113.10:8080", "relay", "relay")
    return [
        ev.AttemptStarted(
            0.0,
            "DIAL",
            "http://rdv.example.net:8080/",
            "public4,public6,private4,private6",
            "wait-for-p2p 1s",
        ),
        ev.SelfAddrsGathered(0.0004, 41000, ("192.168.1.20:41000", "[2001:db8:7::20]:41000")),
        ev.ServerConnected(0.0236, "203.0.113.10:8080", "192.168.1.20:41000", 0.0232),
        ev.ServerResponded(
            0.4121,
            "198.51.100.7:41000",
            (
                "203.0.113.99:52000",
                "10.0.0.5:52000",
                "[fd00::5]:52000",
                "[2001:db8:40::5]:52000",
                "[fe80::5]:52000",
            ),
            0.3885,
        ),
        ev.RelayReady(0.4122, relay),
        ev.CandidateSkipped(0.4125, link6, "space link6 not enabled"),
        ev.DialStarted(0.4128, obs),
        ev.DialStarted(0.4130, priv4),
        ev.DialStarted(0.4131, priv6),
        ev.DialStarted(0.4133, pub6),
        ev.CandidateFailed(0.4141, pub6, "unreachable", 101, "no IPv6 route"),
        ev.CandidateConnected(0.4190, priv6),
        ev.DialRetried(0.4318, obs, 2, "refused", 111),
        ev.HandshakeFailed(0.4402, priv6, "misdial", "peer line 'rdv/1 ACCEPT other-token'"),
        ev.DialRetried(0.5327, obs, 3, "refused", 111),
        ev.DialRetried(0.6339, obs, 4, "reset", 104),
        ev.CandidateConnected(0.6551, obs),
        ev.InboundAccepted(0.6602, inbound),
        ev.HandshakeOk(0.6712, obs),
        ev.Picked(0.6713, obs, False, 0.6713),
        ev.CandidateFailed(0.6715, priv4, "cancelled", None, "picker done"),
        ev.HandshakeOk(0.6758, inbound),
        ev.Discarded(0.6759, inbound, "lost to #1 by 4.5 ms"),
        ev.Discarded(0.6761, relay, "p2p picked"),
    ]


MIB = 1024 * 1024


def sample_session() -> list[ev.Event]:
    """A session: chat both ways, a finished download, one in flight, an upload."""
    return [
        ev.SessionEstablished(0.01, False, "203.0.113.99:52000", 1),
        ev.ChatReceived(1.2, "hi! sending the photos from the trip now"),
        ev.ChatSent(3.4, "great, go ahead. here are my notes"),
        ev.FileOffered(4.0, 1, "in", "trip/IMG_0412.jpg", int(4.2 * MIB)),
        ev.FileAccepted(4.5, 1, "in", 0),
        ev.FileOffered(4.6, 1, "out", "notes.md", 18_432),
        ev.FileAccepted(4.7, 1, "out", 0),
        ev.FileCompleted(4.8, 1, "out", "notes.md", 18_432, "9f2c41d07aa1e5b3" * 4),
        ev.FileProgress(4.9, 1, "in", int(4.2 * MIB), int(4.2 * MIB), 11.8 * MIB),
        ev.FileCompleted(
            4.9,
            1,
            "in",
            "trip/IMG_0412.jpg",
            int(4.2 * MIB),
            "c0ffee5eed" * 6 + "abcd",
            "~/Downloads/rdv/trip/IMG_0412.jpg",
        ),
        ev.FileOffered(5.0, 2, "in", "trip/IMG_0413.jpg", int(5.1 * MIB)),
        ev.FileAccepted(5.1, 2, "in", 0),
        ev.FileProgress(5.3, 2, "in", int(2.3 * MIB), int(5.1 * MIB), 11.2 * MIB),
        ev.ChatReceived(5.4, "chat still works while files move"),
    ]


#: Throughput samples (bytes per second) for the link strip of the session scene.
SESSION_THROUGHPUT: tuple[float, ...] = tuple(
    [0.0] * 36
    + [x * MIB for x in (0.4, 2.1, 6.5, 10.9, 11.8, 11.6, 12.0, 11.4, 3.0, 0.2)]
    + [0.0] * 4
    + [x * MIB for x in (5.5, 10.8, 11.2, 11.0, 11.3, 11.2, 11.1, 11.2, 11.2, 11.2)]
)


def sample_server() -> tuple[ServerStats, list[ev.Event]]:
    """A busy public server: a pair relaying, a pair waiting, one that went p2p."""
    stats = ServerStats(
        lobby=1,
        pairs=[
            PairStats(
                3,
                "rdv-session-512",
                "198.51.100.7:41000",
                "203.0.113.99:52000",
                12.0,
                PairPath.RELAYED,
                48 * MIB,
                1_250_000,
            ),
            PairStats(
                4,
                "rdv-session-77",
                "192.0.2.10:40022",
                "192.0.2.44:33018",
                30.9,
                PairPath.PENDING,
                0,
                0,
            ),
        ],
        pairs_total=4,
        p2p_total=2,
        relay_total=1,
        bytes_relayed=49 * MIB + 1_250_000 + 3 * MIB,
        rejects_by_status={410: 1},
        lobby_timeouts_total=0,
    )
    events: list[ev.Event] = [
        ev.PeerJoined(2.1, "ACCEPT", "rdv-session-31", "192.0.2.30:51000", "192.0.2.30:51000"),
        ev.PeerJoined(2.9, "DIAL", "rdv-session-31", "198.51.100.3:40100", "198.51.100.3:40100"),
        ev.PairMatched(2.9, 1, "rdv-session-31", "198.51.100.3:40100", "192.0.2.30:51000", 0.8),
        ev.P2PReported(3.2, 1, "192.0.2.30:51000"),
        ev.RelayEnded(3.2, 1, 0, 0, 0.3, "p2p", relayed=False),
        # A receiver back with a code whose pair met: the 410 names the token (PROTOCOL 5).
        ev.Rejected(
            5.0, 410, "this code was already used", "192.0.2.99:60000", "ACCEPT", "rdv-session-31"
        ),
        ev.PeerJoined(8.0, "DIAL", "rdv-session-9", "203.0.113.5:40000", "203.0.113.5:40000"),
        ev.PeerJoined(8.4, "ACCEPT", "rdv-session-9", "192.0.2.77:50000", "192.0.2.77:50000"),
        ev.PairMatched(8.4, 2, "rdv-session-9", "203.0.113.5:40000", "192.0.2.77:50000", 0.4),
        ev.P2PReported(8.9, 2, "192.0.2.77:50000"),
        ev.RelayEnded(8.9, 2, 0, 0, 0.5, "p2p", relayed=False),
        ev.PeerJoined(11.0, "DIAL", "rdv-session-512", "198.51.100.7:41000", "198.51.100.7:41000"),
        ev.PeerJoined(
            12.0, "ACCEPT", "rdv-session-512", "203.0.113.99:52000", "203.0.113.99:52000"
        ),
        ev.PairMatched(12.0, 3, "rdv-session-512", "198.51.100.7:41000", "203.0.113.99:52000", 1.0),
        ev.RelayStarted(13.1, 3),
        ev.PeerJoined(30.5, "DIAL", "rdv-session-77", "192.0.2.10:40022", "192.0.2.10:40022"),
        ev.PeerJoined(30.9, "ACCEPT", "rdv-session-77", "192.0.2.44:33018", "192.0.2.44:33018"),
        ev.PairMatched(30.9, 4, "rdv-session-77", "192.0.2.10:40022", "192.0.2.44:33018", 0.4),
        ev.PeerJoined(
            41.0, "ACCEPT", "rdv-session-808", "203.0.113.61:45000", "203.0.113.61:45000"
        ),
    ]
    return stats, events


SERVER_URL = "http://rdv.example.net:8080"
SERVER_NOW = 44.0
"""The server clock at the moment the server scene is shown."""


def session_app_config(**kwargs: object) -> AppConfig:
    """An app configuration for the session scene (no server, nothing on disk)."""
    return AppConfig(
        embedded_server=False,
        download_dir=Path("~/Downloads/rdv"),
        **kwargs,  # type: ignore[arg-type]
    )


async def stage_session(app: RdvApp) -> None:
    """Show the session scene on ``app``'s real Session screen (fixed stamps, no sampling)."""
    stamps = iter(f"12:0{i // 6}:{(i * 7) % 60:02d}" for i in range(100))
    app.session_screen = SessionScreen(
        clock=lambda: next(stamps), download_dir=app.controller.download_dir, sample_s=None
    )
    await app.switch_mode("session")
    screen = app.session_screen
    for event in sample_session():
        screen.feed(event)
    link = screen.query_one(LinkStrip)
    link.rtt_ms = 23.4
    for sample in SESSION_THROUGHPUT:
        link.sample(sample, 0.0)
    link.sample(11.2 * MIB, 0.0)
    for field in screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make snapshots flaky


async def stage_server(app: RdvApp) -> None:
    """Show the server scene on ``app``'s real Server screen."""
    await app.switch_mode("server")
    stats, events = sample_server()
    screen = app.server_screen
    # The stats first: the pairs table's rows take height from the log, and a log that
    # shrinks after it has scrolled is left a line short of its end (a flaky snapshot).
    screen.show_stats(stats, SERVER_URL, SERVER_NOW)
    for event in events:
        screen.add_event(event)
    log = screen.query_one(ServerLog)
    # Layout settles over a few refreshes (the table's rows, the log's wrapped lines):
    # keep the log at its end until it has stayed there for a few of them.
    settled = 0
    for _ in range(200):
        if settled >= 5:
            return
        await asyncio.sleep(0.01)
        if log.scroll_y == log.max_scroll_y:
            settled += 1
        else:
            settled = 0
            log.scroll_end(animate=False, immediate=True)
