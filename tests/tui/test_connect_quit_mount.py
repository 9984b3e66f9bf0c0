"""A quit landing while the Connect screen mounts draws nothing and raises nothing.

Textual takes a screen's widgets apart when the app quits: the form's ``on_mount`` (and
a late embedded server's :meth:`ConnectScreen.show_servers`) then queried ``#server`` and
ended the app with ``NoMatches: No nodes match '#server'`` (9 runs in 40 of h-signals'
start-up SIGTERM test)."""

from __future__ import annotations

from rdv_tui.app import AppConfig, make_app


async def test_the_connect_form_mounted_or_fed_after_the_quit() -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.connect_screen
        servers = screen.servers
    # The app has shut down and the form is taken apart: what a late mount or server calls.
    screen.on_mount()
    screen.show_servers(servers)
    screen.refresh_share()
    assert screen.servers is servers
