"""Race options shared by every command that opens an rdv conn (dial, accept, send, receive).

``--spaces``, ``--wait-p2p`` / ``--pick-first`` / ``--wait``, ``--timeout``, ``-H``,
``--proxy``, ``-v`` and ``--events`` mean the same everywhere. Standard library
only at module level (building the ``rdv`` parser must stay fast); :func:`client_from_args`
imports ``rdv_core`` when a command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rdv_core.client import Client
    from rdv_core.events import EventCallback


class UsageError(ValueError):
    """A bad option value (exit code 2)."""


#: The most rejoins ``--rejoin`` takes: each is a connect to the server, and past a few
#: the server is not coming back soon (docs/PROTOCOL.md section 18).
MAX_REJOINS = 20
#: ``--rejoin``'s default for the commands that wait for their peer (README "rejoin").
WAITING_REJOINS = 6


def add_race_arguments(
    parser: argparse.ArgumentParser,
    *,
    dialer: bool,
    picker_role: str = "the sender",
    fast_start: bool = False,
    app: bool = False,
    rejoin: int = 0,
) -> None:
    """Add the race options; ``dialer`` says whether the picker options apply.

    ``picker_role`` names the side that picks, for the accepting side's help text;
    ``fast_start`` is the default of ``--fast-start``/``--no-fast-start``.
    ``app``: only the options the Connect form has (``rdv tui``): no -H, -v, --events.
    ``rejoin`` is the default of ``--rejoin`` (docs/PROTOCOL.md section 18).
    """
    group = parser.add_argument_group("connection race")
    group.add_argument(
        "--spaces",
        default=None,
        metavar="LIST",
        help="address spaces for direct conns: comma list of public4, public6, private4, "
        "private6, link4, link6, loopback4, loopback6, or default, all, public, loopback, "
        "none (none forces the relay); default: loopback for a server on this machine "
        "(127.0.0.1, ::1, localhost, 0.0.0.0), else default",
    )
    ignored = "" if dialer else f" (ignored here: {picker_role} picks)"
    pick = group.add_mutually_exclusive_group()
    pick.add_argument(
        "--wait-p2p",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"take the first direct conn, or the relay after SECONDS (default 1){ignored}",
    )
    pick.add_argument(
        "--pick-first",
        action="store_true",
        help=f"take the first conn available, relay included{ignored}",
    )
    pick.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"always wait SECONDS, then prefer a direct conn{ignored}",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up meeting the peer after SECONDS, lobby wait included; 0: no limit "
        f"(default: {'120 in the app' if app else 'no limit'})",
    )
    if app:
        return
    # rdv send/receive meet by code, pipe mode by token: "the same token" in send's
    # help left a user wondering which token (README: "with the same token (or code)").
    secret = "token" if picker_role == "the dialer" else "code"
    group.add_argument(
        "--rejoin",
        type=int,
        default=rejoin,
        metavar="N",
        help="when the server conn is lost while we wait for the peer (a restart, a drain, a "
        f"balancer's dead backend), rejoin the lobby with the same {secret} up to N times, "
        f"0.5 s doubling to 5 s apart; 0: never (default {rejoin})",
    )
    group.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header for the server, e.g. 'Authorization: Bearer x' (repeatable)",
    )
    group.add_argument(
        "--proxy",
        default=None,
        metavar="URL",
        help="reach the server through this HTTP proxy with CONNECT "
        "(http://[user:password@]host[:port]), or 'none'; default: HTTPS_PROXY / HTTP_PROXY / "
        "ALL_PROXY unless NO_PROXY matches the server",
    )
    group.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="NAME",
        help="use only this network interface for the server conn and direct dials "
        "(repeatable); default: every uplink, public candidates dialled from each",
    )
    group.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="ADDR",
        help="use only this local address (repeatable), like --interface",
    )
    group.add_argument(
        "--fast-start",
        action=argparse.BooleanOptionalAction,
        default=fast_start,
        help="start on the relay at once and move to a direct conn when one opens, if the "
        "peer offers it too (docs/PROTOCOL.md section 16; plain rdv/1 otherwise); default: "
        + ("on" if fast_start else "off"),
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="log the race on stderr, one line per event"
    )
    group.add_argument(
        "--events", metavar="FILE", default=None, help="write every event to FILE as JSON lines"
    )


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :class:`rdv_core.client.Client` from the options.

    Raises:
        UsageError: a bad value (negative seconds, unknown space, malformed header).
    """
    import math

    from rdv_core.client import Picker, PickFirst, RejoinPolicy, WaitConstant, WaitForP2P
    from rdv_core.wire import AddrError, parse_spaces

    for name in ("wait_p2p", "wait", "timeout"):
        value = getattr(args, name)
        # `not value >= 0` also refuses nan (a traceback in the client for --timeout nan,
        # and a picker that never compares true for --wait-p2p nan); inf is no number of
        # seconds either (--timeout 0 is the way to say no limit).
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds >= 0")
    picker: Picker
    if args.pick_first:
        picker = PickFirst()
    elif args.wait is not None:
        picker = WaitConstant(args.wait)
    else:
        picker = WaitForP2P(1.0 if args.wait_p2p is None else args.wait_p2p)
    from rdv_tui.cli.checks import spaces_for

    # The same rule on both sides, so that two peers of a local server meet over loopback.
    server = getattr(args, "url", None) or getattr(args, "server", None) or ""
    try:
        spaces = parse_spaces(spaces_for(server, args.spaces))
    except AddrError as exc:
        raise UsageError(f"--spaces: {exc}") from exc
    headers: list[tuple[str, str]] = []
    for raw in getattr(args, "header", []):
        name, colon, value = raw.partition(":")
        if not colon or not name.strip():
            raise UsageError(f"bad header {raw!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    rejoins = getattr(args, "rejoin", 0)
    if not 0 <= rejoins <= MAX_REJOINS:
        raise UsageError(f"--rejoin must be a whole number from 0 to {MAX_REJOINS}")
    proxy = getattr(args, "proxy", None)
    if proxy is not None:
        from rdv_core.wire import NO_PROXY_WORD, parse_proxy_url

        if proxy.strip().lower() != NO_PROXY_WORD:
            try:
                parse_proxy_url(proxy)
            except ValueError as exc:
                raise UsageError(f"--proxy: {exc}") from exc
    interfaces = tuple(getattr(args, "interface", ()))
    sources = tuple(_unbracket(text) for text in getattr(args, "source", ()))
    if interfaces or sources:
        # Checked with the other options, before anything is said or sent: a name this
        # machine does not have was found out only by the attempt ('rdv send' had printed
        # its 'Sending' line and run the doctor of --explain first).
        from rdv_core.client._uplinks import plan_paths

        try:
            plan_paths(interfaces, sources)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return {
        "spaces": spaces,
        "picker": picker,
        "headers": headers,
        # 0 is "no limit", as in the app and rdv serve --lobby-timeout: a limit of zero
        # seconds could only ever time out.
        "timeout": args.timeout or None,
        "proxy": proxy,
        "interfaces": interfaces,
        "sources": sources,
        "fast_start": bool(getattr(args, "fast_start", False)),
        "rejoin": RejoinPolicy(rejoins=rejoins) if rejoins else None,
    }


def _unbracket(text: str) -> str:
    """``--source [2001:db8::2]`` as ``2001:db8::2``: URLs and ``--listen`` take IPv6 in
    brackets, so users type them here too, and got "'[2001:db8::2]' is not an IP address"."""
    text = text.strip()
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def client_from_args(args: argparse.Namespace, on_event: EventCallback | None) -> Client:
    """A :class:`~rdv_core.client.Client` configured by the race options.

    Raises:
        UsageError: see :func:`client_options`.
    """
    from rdv_core.client import Client

    return Client(on_event=on_event, **client_options(args))
