"""The Connect screen: which server, which code, which role, and how to race."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, RadioSet, Select, Static

from rdv_core.client import Client
from rdv_core.session import generate_code
from rdv_core.wire import SINGLE_SPACES, AddrSpace, format_spaces, parse_server_url
from rdv_tui.attempt import PICKERS, ConnectParams, PickerKind, Role, parse_seconds
from rdv_tui.share import ServerChoice
from rdv_tui.widgets.code_input import CodeInput
from rdv_tui.widgets.fitted_footer import FittedFooter
from rdv_tui.widgets.toggles import OnOffCheckbox, OnOffRadioButton

RadioButton = OnOffRadioButton  # every radio and checkbox here shows its state in the glyph


THIN = 66
"""Below this many columns the form puts two spaces a row, and each row's last box
(race only, force relay) under the row's first (rdv.tcss, ``-thin``)."""


class ConnectScreen(Screen[None]):
    """The form that starts an attempt. Every check runs before any traffic.

    Attributes:
        servers: Which server the form offers and what to tell the other machine.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Short labels: with the app's screen keys they must fit 80 columns.
        Binding("ctrl+g", "generate_code", "New", tooltip="A new code"),
        Binding("ctrl+y", "copy_code", "Copy", tooltip="Copy the code"),
        Binding("ctrl+r", "connect", "Connect"),
    ]

    SHORT_LABELS: ClassVar[dict[str, str]] = {"generate_code": "", "copy_code": ""}
    """Where the footer is short (rdv_tui/widgets/fitted_footer.py): New and Copy are
    buttons beside the code."""

    @dataclass
    class ConnectRequested(Message):
        """The user asked for an attempt with these (validated) params."""

        params: ConnectParams

    def __init__(self, servers: ServerChoice, form: dict[str, Any] | None = None) -> None:
        """``form``: settings given on the command line (``rdv tui --spaces ...``); they
        win over the ones remembered for the server."""
        super().__init__()
        self.servers = servers
        self.form = form or {}
        self._spaces_touched = False  # the user set the spaces: a server edit keeps them

    def compose(self) -> ComposeResult:
        servers = self.servers
        recent = servers.recent
        yield Static(
            servers.share_text(), id="share", markup=False
        )  # refreshed on mount and on edits
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("Server")
                yield Input(
                    servers.default_url(),
                    placeholder="http://host:port/ of an rdv server",
                    id="server",
                    suggester=SuggestFromList(recent.servers, case_sensitive=False),
                    compact=True,
                )
            with Horizontal(classes="row", id="code-row"):
                yield Label("Code")
                yield CodeInput(
                    generate_code(),
                    placeholder="7-tulip-orbit (share it with the other machine)",
                    id="code",
                    suggester=SuggestFromList(recent.codes),
                    compact=True,
                )
                with Horizontal(id="code-buttons"):  # under the code below 66 columns
                    yield Button(
                        "New", id="generate", tooltip="Generate a fresh code (ctrl+g)", compact=True
                    )
                    yield Button("Copy", id="copy", tooltip="Copy the code (ctrl+y)", compact=True)
            with Horizontal(classes="row", id="role-row"):
                yield Label("Role")
                with RadioSet(id="role", compact=True):
                    yield RadioButton("dial", value=True, id="role-dial", compact=True)
                    yield RadioButton("accept", id="role-accept", compact=True)
                yield OnOffCheckbox(
                    "race only (no session)",
                    id="race-only",
                    tooltip="Only run the rdv/1 race, e.g. against the Go rdv: no chat, no files",
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label("Spaces")
                with Horizontal(id="spaces"):
                    for space in SINGLE_SPACES:
                        name = format_spaces(space)
                        yield OnOffCheckbox(
                            name,
                            value=bool(servers.default_spaces() & space),
                            id=f"space-{name}",
                            compact=True,
                        )
            with Horizontal(classes="row", id="picker-row"):
                yield Label("Picker")
                with Horizontal(id="picker-box"):
                    yield Select(
                        [(p, p) for p in PICKERS],
                        value="wait-for-p2p",
                        allow_blank=False,
                        id="picker",
                        compact=True,
                    )
                    yield Input("1.0", id="wait", tooltip="seconds the picker waits", compact=True)
                    yield Static("s", classes="unit")
                yield OnOffCheckbox("force relay", id="force-relay", compact=True)
            with Horizontal(classes="row", id="timeout-row"):
                yield Label("Timeout")
                yield Input(
                    "120",
                    id="timeout",
                    tooltip="overall limit, lobby wait included (empty: none)",
                    compact=True,
                )
                yield Static("s (lobby wait included)", classes="unit")
            yield Button("Connect", variant="primary", id="connect", compact=True)
            yield Static("", id="error", markup=False)
        yield FittedFooter()  # every key it shows is whole, at any width

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < THIN, "-thin")

    def on_mount(self) -> None:
        self.sub_title = "connect"
        if not self._drawable:
            # Mounted while the app quits (ctrl+q or a SIGTERM at start-up): its widgets
            # may be gone, and the query below ended the app with a traceback (NoMatches
            # '#server', 9 runs in 40 of h-signals' test). As the Race screen's on_mount.
            return
        self._server_settings(self.query_one("#server", Input).value)
        self.refresh_share()
        # Not scrolled into view: the form is laid out again once the screen knows its
        # size (-short caps the share text, -thin adds rows), and a scroll made for the
        # first layout hid the code row at 40x12 (the code field is near the top anyway).
        self.query_one("#code", Input).focus(scroll_visible=False)

    @property
    def _drawable(self) -> bool:
        """The app not shutting down: Textual takes the form apart on quit, and the
        embedded server (or the demo) may still report to it then. ``is_attached`` is
        false once the app exits, and outside the app's context."""
        return self.is_attached and self.app.is_running

    def show_servers(self, servers: ServerChoice) -> None:
        """Offer these servers from now on (the embedded one may start after the form)."""
        self.servers = servers
        if self.is_mounted and self._drawable:
            server = self.query_one("#server", Input)
            if not server.value:
                server.value = self.servers.default_url()  # its Changed applies the settings
            self.refresh_share()

    def refresh_share(self) -> None:
        """Redraw what to give the other machine: it follows the server, code, role and
        race-only fields (the server may also start late)."""
        if not self._drawable:
            return
        code = self.query_one("#code", Input).value
        role = "accept" if self.query_one("#role-accept", RadioButton).value else "dial"
        race_only = self.query_one("#race-only", Checkbox).value
        url = self.query_one("#server", Input).value
        text = self.servers.share_text(code, role, race_only, url=url)
        # The app's own embedded server is reached directly (Controller: never through a
        # proxy), so the banner names no proxy for it.
        own = self.servers.is_embedded(url)
        self.query_one("#share", Static).update(text + ("" if own else proxy_line(url)))

    @on(Input.Changed, "#code")
    @on(RadioSet.Changed, "#role")
    @on(Checkbox.Changed, "#race-only")
    def _form_changed(self) -> None:
        self.refresh_share()

    @on(CodeInput.CommandPasted)
    def _command_pasted(self, message: CodeInput.CommandPasted) -> None:
        """A pasted ``rdv receive --server URL CODE`` line: its server and role too."""
        command, taken = message.command, ["code"]
        if command.server:
            self.query_one("#server", Input).value = command.server
            taken.append("server")
        if command.role:
            self.query_one(f"#role-{command.role}", RadioButton).value = True
            taken.append(f"role {command.role}")
        self.notify(f"{', '.join(taken)} taken from the pasted command", title="Code", markup=False)

    @on(Input.Changed, "#server")
    def _server_changed(self, event: Input.Changed) -> None:
        self._server_settings(event.value)
        self.refresh_share()

    @on(Checkbox.Changed, "#spaces Checkbox")
    def _spaces_changed(self) -> None:
        self._spaces_touched = True

    def _server_settings(self, url: str) -> None:
        """The settings for this server: the command line's, else the ones remembered
        with it, else its default spaces (loopback only for a server on this machine)."""
        servers = self.servers
        settings = {**servers.recent.settings.get(servers.settings_key(url.strip()), {})}
        settings.update(self.form)
        if settings:
            current = self._read(validate=False)
            self._show(current.with_settings(settings), fields=False)
        elif not self._spaces_touched:
            self._show_spaces(servers.default_spaces(url.strip()))

    # ----- reading the form

    def params(self) -> ConnectParams:
        """The form as validated params.

        Raises:
            ValueError: with a message for the user.
        """
        return self._read(validate=True)

    def _read(self, *, validate: bool) -> ConnectParams:
        spaces = AddrSpace.INVALID
        for space in SINGLE_SPACES:
            if self.query_one(f"#space-{format_spaces(space)}", Checkbox).value:
                spaces |= space
        role: Role = "accept" if self.query_one("#role-accept", RadioButton).value else "dial"
        picker = cast(PickerKind, self.query_one("#picker", Select).value)
        try:
            wait = parse_seconds(self.query_one("#wait", Input).value, "wait")
            timeout = parse_seconds(
                self.query_one("#timeout", Input).value, "timeout", allow_none=True
            )
        except ValueError:
            if validate:
                raise
            wait, timeout = None, None
        params = ConnectParams(
            server_url=self.query_one("#server", Input).value.strip(),
            code=self.query_one("#code", Input).value.strip(),
            role=role,
            spaces=spaces,
            picker=picker,
            wait_s=wait if wait is not None else 1.0,
            force_relay=self.query_one("#force-relay", Checkbox).value,
            timeout_s=timeout,
            race_only=self.query_one("#race-only", Checkbox).value,
        )
        if validate:
            params.validate()
        return params

    def show_params(self, params: ConnectParams) -> None:
        """Fill the form from ``params`` (the demo shows what it runs)."""
        if not self._drawable:
            return
        self._show(params, fields=True)

    def _show(self, params: ConnectParams, *, fields: bool) -> None:
        if fields:
            self.query_one("#server", Input).value = params.server_url
            self.query_one("#code", CodeInput).show_code(params.code)
            self.query_one("#race-only", Checkbox).value = params.race_only
        self.query_one(f"#role-{params.role}", RadioButton).value = True
        self._show_spaces(params.spaces)
        self.query_one("#picker", Select).value = params.picker
        self.query_one("#wait", Input).value = f"{params.wait_s:g}"
        timeout = params.timeout_s
        self.query_one("#timeout", Input).value = "" if timeout is None else f"{timeout:g}"
        self.query_one("#force-relay", Checkbox).value = params.force_relay

    def _show_spaces(self, spaces: AddrSpace) -> None:
        with self.prevent(Checkbox.Changed):  # not the user's doing: keep following
            for space in SINGLE_SPACES:
                box = self.query_one(f"#space-{format_spaces(space)}", Checkbox)
                box.value = bool(spaces & space)

    def use_recent(self, kind: str, value: str) -> None:
        """Fill the server or the code field with a remembered value."""
        if kind == "server":
            self.query_one("#server", Input).value = value
        else:
            self.query_one("#code", CodeInput).show_code(value)

    # ----- actions

    def action_generate_code(self) -> None:
        """Put a fresh random code in the code field."""
        self.query_one("#code", CodeInput).show_code(generate_code())

    def action_copy_code(self) -> None:
        """Copy the code to the clipboard (OSC 52 in most terminals)."""
        code = self.query_one("#code", Input).value.strip()
        if not code:  # it said "copied " and copied nothing
            self.notify("no code to copy: ctrl+g makes one", title="Code", severity="warning")
            return
        self.app.copy_to_clipboard(code)
        # A race-only token is any text: shown as typed, never read as markup.
        self.notify(f"copied {code}", title="Code", markup=False)

    def action_connect(self) -> None:
        """Validate the form and start the attempt."""
        error = self.query_one("#error", Static)
        try:
            params = self.params()
        except ValueError as exc:
            error.update(f"✗ {exc}")
            self.notify(str(exc), severity="error", title="Cannot connect", markup=False)
            return
        error.update("")
        self.post_message(self.ConnectRequested(params))

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's command palette entries."""
        yield SystemCommand("Connect", "Start the attempt (ctrl+r)", self.action_connect)
        yield SystemCommand(
            "New code", "Generate a fresh session code (ctrl+g)", self.action_generate_code
        )
        yield SystemCommand(
            "Copy code", "Copy the code to the clipboard (ctrl+y)", self.action_copy_code
        )

    @on(Button.Pressed, "#generate")
    def _generate(self) -> None:
        self.action_generate_code()

    @on(Button.Pressed, "#copy")
    def _copy(self) -> None:
        self.action_copy_code()

    @on(Button.Pressed, "#connect")
    @on(Input.Submitted)
    def _connect(self) -> None:
        self.action_connect()


def proxy_line(url: str) -> str:
    """The banner's last line when the attempt would reach ``url`` through a proxy from the
    environment (``HTTPS_PROXY`` etc., docs/PROTOCOL.md section 17.1): the form has no proxy
    field, and a proxy that refuses CONNECT was otherwise a surprise at connect time. The
    proxy is named without its password; "" for no proxy or a URL still being typed."""
    try:
        server = parse_server_url(url.strip())
    except ValueError:
        return ""  # the form says what is wrong with the URL at connect (ctrl+r)
    try:
        # The app's Client reads the environment as this one does (rdv_tui/attempt.py).
        proxy = Client().proxy_for(server)
    except ValueError as exc:  # a bad HTTPS_PROXY: the attempt would fail with this
        return f"\n✗ {exc}"
    return "" if proxy is None else f"\nThis app reaches it through proxy {proxy.named}."
