"""What the Connect screen collects, validated, and how it becomes a client.

Kept apart from the screen so that the CLI, the demo and the tests build attempts
the same way, and so that every check happens before any network traffic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, Literal

from rdv_core.client import Client, Picker, PickFirst, RejoinPolicy, WaitConstant, WaitForP2P
from rdv_core.events import EventCallback
from rdv_core.session import parse_code
from rdv_core.wire import AddrSpace, format_spaces, parse_server_url, parse_spaces
from rdv_tui.cli.checks import check_code

Role = Literal["dial", "accept"]
PickerKind = Literal["wait-for-p2p", "pick-first", "wait-constant"]

PICKERS: tuple[PickerKind, ...] = ("wait-for-p2p", "pick-first", "wait-constant")


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """One connection attempt, as the user asked for it.

    Attributes:
        server_url: The rdv server.
        code: A session code (``7-tulip-orbit``) or, with ``race_only``, a raw token.
        role: ``dial`` (we pick the conn) or ``accept``.
        spaces: Address spaces for direct conns.
        picker: How the dialer picks.
        wait_s: The picker's wait (wait-for-p2p, wait-constant).
        force_relay: Skip direct candidates: the server relays.
        timeout_s: Overall limit for the attempt, lobby wait included (None: none).
        race_only: Only run the race (any rdv/1 peer, e.g. the Go one): no session.
    """

    server_url: str
    code: str
    role: Role = "dial"
    spaces: AddrSpace = AddrSpace.DEFAULT
    picker: PickerKind = "wait-for-p2p"
    wait_s: float = 1.0
    force_relay: bool = False
    timeout_s: float | None = 120.0
    race_only: bool = False

    def validate(self) -> None:
        """Check everything before any traffic.

        Raises:
            ValueError: with a message for the user.
        """
        parse_server_url(self.server_url)
        if not self.code.strip():
            raise ValueError("enter a session code (or generate one)")
        if not self.race_only:
            check_code(self.code)
        if self.wait_s < 0:
            raise ValueError("the wait time cannot be negative")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("the timeout must be positive")
        if not self.force_relay and not self.spaces & AddrSpace.ALL:
            raise ValueError("enable at least one address space, or force the relay")

    def form_settings(self) -> dict[str, Any]:
        """The settings the app remembers for a server (no code, no server URL)."""
        return {
            "role": self.role,
            "spaces": format_spaces(self.spaces),
            "picker": self.picker,
            "wait_s": self.wait_s,
            "force_relay": self.force_relay,
            "timeout_s": self.timeout_s,
        }

    def with_settings(self, settings: dict[str, Any]) -> ConnectParams:
        """These params with remembered ``settings`` applied; bad or unknown ones are ignored
        (a damaged file never stops the app)."""
        changes: dict[str, Any] = {}
        role, picker = settings.get("role"), settings.get("picker")
        if role in ("dial", "accept"):
            changes["role"] = role
        if picker in PICKERS:
            changes["picker"] = picker
        with contextlib.suppress(KeyError, ValueError):
            changes["spaces"] = parse_spaces(str(settings["spaces"]))
        wait, timeout = settings.get("wait_s"), settings.get("timeout_s", "absent")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0:
            changes["wait_s"] = float(wait)
        if timeout is None or (
            isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0
        ):
            changes["timeout_s"] = None if timeout is None else float(timeout)
        if isinstance(settings.get("force_relay"), bool):
            changes["force_relay"] = settings["force_relay"]
        return replace(self, **changes)

    @property
    def token(self) -> str:
        """What the server sees: the code's nameplate token, or the raw token."""
        return self.code.strip() if self.race_only else parse_code(self.code).token

    def make_picker(self) -> Picker:
        """The picker object."""
        if self.picker == "pick-first":
            return PickFirst()
        if self.picker == "wait-constant":
            return WaitConstant(self.wait_s)
        return WaitForP2P(self.wait_s)

    def make_client(self, on_event: EventCallback | None, *, direct: bool = False) -> Client:
        """A client configured from these params; ``direct``: never through a proxy (the
        app's own embedded server, on this machine's loopback: an office's HTTP_PROXY would
        have been asked to CONNECT to its own 127.0.0.1, and the demo failed)."""
        spaces = AddrSpace.NONE if self.force_relay else self.spaces
        return Client(
            trust_env=not direct,
            spaces=spaces,
            picker=self.make_picker(),
            timeout=self.timeout_s,
            on_event=on_event,
            fast_start=not self.race_only,  # a session starts on the relay at once
            rejoin=RejoinPolicy(),  # the app waits in the lobby as rdv receive does (PROTOCOL 18)
        )


def parse_seconds(text: str, what: str, *, allow_none: bool = False) -> float | None:
    """A number of seconds typed by a person (``""`` or ``none``: None when allowed).

    Raises:
        ValueError: naming ``what`` when the text is not a number.
    """
    cleaned = text.strip().lower().removesuffix("s").strip()
    if allow_none and cleaned in ("", "none", "0", "off"):
        return None
    try:
        return float(cleaned)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number of seconds") from None


__all__ = ["PICKERS", "ConnectParams", "PickerKind", "Role", "parse_seconds"]
