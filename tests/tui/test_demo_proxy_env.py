"""The demo behind an office proxy: the app's own embedded server is reached directly.

With ``HTTP_PROXY`` set (and no ``NO_PROXY`` for 127.0.0.1), the app's attempt, its doctor
and the demo's peer asked the proxy to CONNECT to the embedded server's loopback address,
which is the proxy's own loopback: the README's main command failed in an office network.
Here the "proxy" is a port nothing listens on (127.0.0.1:9): any use of it fails the race.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_tui.app import make_app
from rdv_tui.widgets.chat import ChatLog

from tests.tui.test_live import config, wait_for


async def test_the_demo_goes_direct_to_its_own_server_with_a_proxy_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    app = make_app(config(tmp_path, demo_dir=tmp_path / "demo"))
    async with app.run_test(size=(100, 30)) as pilot:
        app.controller.session_switch_delay = 0.1
        await wait_for(pilot, lambda: app.race_screen.model.result is not None, limit=20)
        result = app.race_screen.model.result
        assert result is not None and result.ok, result
        # The doctor of the race (section 15) reached the server too: it told our address.
        await wait_for(pilot, lambda: app.doctor_screen.report is not None, limit=10)
        report = app.doctor_screen.report
        assert report is not None and report.servers[0].observed is not None, report

        # The demo's session is up (its peer came through no proxy either): let the switch
        # to the Session screen land before the app quits.
        def echoed() -> bool:
            logs = app.session_screen.query(ChatLog)
            return (
                bool(logs)
                and ("peer", "echo: hello from the dialing side") in logs.first(ChatLog).lines_added
            )

        await wait_for(pilot, echoed, limit=20)
