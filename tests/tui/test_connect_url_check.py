"""The Connect form checks the server URL as the CLI does, before any traffic: an IPv6
address without brackets shows the CLI's message in the form, not a Race screen."""

from __future__ import annotations

import pytest
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
        assert "add its own interface, http://[fe80::1%IFACE]:8080" in text, text
        assert text.count("%eth0") == 1, text  # this machine's URL, in the first line only


async def test_the_form_names_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app reads ``HTTPS_PROXY`` etc. as the CLI does, but its form said nothing of it:
    a proxy refusing CONNECT came as a surprise at connect time."""
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:secret@proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "inside.corp")
    app = make_app(AppConfig(embedded_server=False, server_url="https://rdv.example.net"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.connect_screen

        def banner() -> str:
            return str(screen.query_one("#share", Static).render())

        words = "through proxy http://alice:***@proxy.corp:3128 (from HTTPS_PROXY)"
        assert words in banner() and "secret" not in banner(), banner()
        for url in ("https://rdv.inside.corp", "http://rdv.example.net:8080"):
            screen.query_one("#server", Input).value = url  # NO_PROXY; http:// is HTTP_PROXY's
            await pilot.pause()
            assert "proxy" not in banner(), (url, banner())
        monkeypatch.setenv("HTTP_PROXY", "socks5://proxy.corp:1080")
        screen.query_one("#server", Input).value = "http://rdv.example.net:9000"
        await pilot.pause()
        assert "✗ HTTP_PROXY: " in banner(), banner()  # the attempt would fail so
