"""The Connect form checks the server URL as the CLI does, before any traffic: an IPv6
address without brackets shows the CLI's message in the form, not a Race screen."""

from __future__ import annotations

from textual.widgets import Input, Static

from rdv_tui.app import AppConfig, make_app


async def test_an_unbracketed_ipv6_server_is_refused_in_the_form() -> None:
    app = make_app(AppConfig(embedded_server=False, server_url="http://rdv.example.net:8080"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.connect_screen
        for url, words in [
            ("http://2001:db8::1:8080", "takes brackets: http://[2001:db8::1]:8080"),
            ("[2001:db8::1]:8080", "(write http://[2001:db8::1]:8080)"),
        ]:
            screen.query_one("#server", Input).value = url
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert words in str(screen.query_one("#error", Static).render()), url
            assert app.current_mode == "connect", url


async def test_a_link_local_server_is_shared_without_this_machines_zone() -> None:
    """The banner told the other machine ``--server http://[fe80::1%eth0]:8080``: eth0 is
    this machine's interface, meaningless (or another link) over there."""
    app = make_app(AppConfig(embedded_server=False, server_url="http://[fe80::1%eth0]:8080"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.connect_screen
        screen.query_one("#code", Input).value = "7-tulip-orbit"
        await pilot.pause()
        text = str(screen.query_one("#share", Static).render())
        assert "--server http://[fe80::1]:8080 " in text, text
        assert "adds its own interface, http://[fe80::1%IFACE]:8080" in text, text
        assert text.count("%eth0") == 1, text  # this machine's URL, in the first line only
