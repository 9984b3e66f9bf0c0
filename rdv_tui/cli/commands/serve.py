"""``rdv serve``: run an rdv server headless (native asyncio front).

One log line per pair (matched, p2p or relayed, bytes each way, duration), readable or
JSON; ``--events FILE`` appends every server event as a JSON line. Text logs escape what
clients control: tokens as in their URL (``%0A``), every other unprintable character as
``\\xNN`` (no forged lines, no terminal escape sequences). SIGINT, SIGTERM and
SIGHUP shut down gracefully: lobby clients get ``503``, pairs are closed. This module imports
only the standard library at module level and never imports textual or rich.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from rdv_tui.cli.commands import serve_args as kind
from rdv_tui.cli.commands import serve_signals
from rdv_tui.cli.commands import serve_summary as summary
from rdv_tui.cli.commands.serve_args import CAP_FLAGS, DEFAULT_LOBBY_TIMEOUT_S
from rdv_tui.cli.commands.serve_logs import EventLog, configure_logging
from rdv_tui.cli.commands.serve_reload import CertWatch
from rdv_tui.cli.commands.serve_tls import TlsFilesError, tls_context, validity_warning
from rdv_tui.cli.listen import is_any_ipv6, listen_error, parse_listen
from rdv_tui.cli.memory import give_back_memory

log = logging.getLogger("rdv.server")


def add_parser(subparsers: Any) -> None:
    """Register ``rdv serve``."""
    parser = subparsers.add_parser(
        "serve",
        help="run an rdv server (headless)",
        description="Run an rdv/1 server: peers meet in its lobby by token, learn each "
        "other's addresses, and fall back to relaying through it. Also answers GET /healthz, "
        "GET /metrics (Prometheus) and rdv doctor's GET /.rdv/observed and /.rdv/probes "
        "(and /.rdv/dial-back with --dial-back).",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=":8080",
        help="address to listen on; an empty host or [::] means every interface, IPv4 and "
        "IPv6 (0.0.0.0: IPv4 only; default :8080)",
    )
    parser.add_argument(
        "--prefix",
        metavar="PATH",
        default="",
        type=kind.prefix,
        help="serve rdv requests under this path, e.g. /rdv (clients use http://host:port/rdv); "
        "letters, digits, -._~/$&+=:@;, and %%XX escapes",
    )
    parser.add_argument(
        "--lobby-timeout",
        metavar="S",
        type=kind.non_negative_float,
        default=DEFAULT_LOBBY_TIMEOUT_S,
        help="answer 408 to a request whose peer has not come within S seconds "
        f"(default {DEFAULT_LOBBY_TIMEOUT_S:.0f}; 0: wait forever); a receiver whose session "
        "code's pair met in the last 10 minutes gets 410 after 2 s",
    )
    for flag, default, what in CAP_FLAGS:
        parser.add_argument(
            flag,
            metavar="N",
            type=kind.cap,
            default=default,
            # --max-lobby 0 still keeps the lobby within 3/4 of the open-file limit.
            help=f"{what} (default {default}; 0: "
            + ("only the open-file bound)" if flag == "--max-lobby" else "no cap)"),
        )
    parser.add_argument(
        "--idle-timeout",
        metavar="S",
        type=kind.positive_float,
        help="reset a pair after S seconds without bytes in either direction (default: never)",
    )
    parser.add_argument(
        "--drain",
        metavar="S",
        type=kind.non_negative_float,
        help="on SIGTERM/SIGINT/SIGHUP, answer 503 to new requests and the lobby at once but "
        "let open pairs run up to S seconds before resetting them; a second signal resets "
        "them at once (default 0)",
    )
    parser.add_argument(
        "--trust-proxy",
        metavar="CIDR",
        nargs="+",
        action="extend",
        default=[],
        help="honour X-Forwarded-For/X-Forwarded-Port and X-Real-IP/X-Real-Port (and, with "
        "--proxy-protocol, PROXY headers) only from these proxy networks, separate words "
        "(e.g. 127.0.0.1/32 10.0.0.0/8; no host bits: 10.0.0.1/8 is refused)",
    )
    parser.add_argument(
        "--probe-port",
        metavar="PORT",
        type=kind.port,
        action="append",
        default=[],
        help="also listen on PORT for the doctor's probes (GET /.rdv/observed), on the same "
        "host as --listen (repeatable; rdv doctor compares what each port saw)",
    )
    parser.add_argument(
        "--dial-back",
        action="store_true",
        help="let rdv doctor ask for a dial-back: the server connects from another port to the "
        "address the request came from (never any other), rate-limited, to measure filtering",
    )
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="read a PROXY v1/v2 header (HAProxy send-proxy, nginx stream, AWS NLB) from "
        "--trust-proxy networks; refuse it from anyone else (not with --tls-cert: terminate "
        "TLS at the balancer)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        type=Path,
        help="TLS certificate chain (PEM); a renewed one is taken without a restart "
        "(looked at every minute, and on SIGUSR1)",
    )
    parser.add_argument("--tls-key", metavar="FILE", type=Path, help="TLS private key (PEM)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="also log every request, lobby event and rejection (-vv: debug)",
    )
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help="log JSON lines to stderr (after the plain 'listening on' line)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop: uvloop is leaner and quicker per relayed byte; auto uses it when "
        "installed (pip install uvloop), else asyncio's default loop",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        type=Path,
        help="append every server event as a JSON line to FILE ('-' for stdout)",
    )


async def _serve(args: argparse.Namespace, host: str, port: int, tls: Any) -> int:
    # Signals are ours before the port is: a supervisor may send SIGTERM as soon as
    # /healthz answers or the "listening" line appears, and it must get the graceful
    # shutdown (exit 0), not the default action (killed by the signal).
    loop = asyncio.get_running_loop()
    watch = None if tls is None else CertWatch(tls, args.tls_cert, args.tls_key)
    with serve_signals.taken(loop, watch) as stop:
        return await _serve_until_stopped(args, host, port, tls, stop, watch)


def _sockname(sock: Any) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _shut_down(server: Any, drain_s: float | None, stop: serve_signals.Stop) -> None:
    """``503`` to the lobby at once; open pairs get up to ``drain_s`` to end on their own
    (a rolling restart behind a balancer: its health checks move new tokens elsewhere)."""
    pairs = len(server.stats().pairs)
    if drain_s and pairs:
        log.info(
            "draining %d open pairs for up to %gs (a second signal resets them)", pairs, drain_s
        )
    closing = asyncio.ensure_future(server.close(drain_s=drain_s or 0.0))
    cut = asyncio.ensure_future(stop.again.wait())
    await asyncio.wait((closing, cut), return_when=asyncio.FIRST_COMPLETED)
    if not closing.done():
        log.info("second signal: resetting the open pairs now")
        server.stop_draining()
    cut.cancel()
    await closing


async def _serve_until_stopped(
    args: argparse.Namespace,
    host: str,
    port: int,
    tls: Any,
    stop: serve_signals.Stop,
    watch: CertWatch | None,
) -> int:
    import resource

    from rdv_core.server import (
        LobbyLimits,
        ProbeService,
        RdvServer,
        make_observed_addr,
        relay_silence,
        start_native,
        start_probe_ports,
    )
    from rdv_tui.cli.events_file import open_events

    # An empty host means every interface: no host for asyncio. So does [::]: Go's
    # net.Listen (the reference's) makes it one socket for IPv4 and IPv6, where binding
    # "::" alone sets IPV6_V6ONLY, and IPv4 clients were refused.
    bind_host = None if not host or is_any_ipv6(host) else host
    stream: IO[str] | None = None
    if args.events is not None and str(args.events) == "-":
        from rdv_tui.cli.closed_stdout import stdout_closed

        if stdout_closed("rdv serve", "--events -"):
            return 2
    if args.events is not None:
        try:
            stream = (
                sys.stdout if str(args.events) == "-" else open_events(args.events, append=True)
            )
        except OSError as exc:
            print(
                f"rdv serve: cannot open --events {args.events}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    events = EventLog(args.verbose, stream, str(args.events))
    try:
        limits = LobbyLimits(
            total=_within_fd_limit(args.max_lobby),
            per_address=args.max_lobby_per_address,
            per_network=args.max_lobby_per_network,
            pairs_per_address=args.max_pairs_per_address,
            pairs_per_network=args.max_pairs_per_network,
            heads_per_address=args.max_heads_per_address,
            heads_per_network=args.max_heads_per_network,
        )
        server = RdvServer(
            lobby_limits=limits,
            lobby_timeout=args.lobby_timeout,
            idle_timeout=args.idle_timeout,
            observed_addr=make_observed_addr(args.trust_proxy),
            on_event=events,
        )
        probes = ProbeService(args.probe_port, dial_back=args.dial_back, observe=server.observe)
        try:
            front = await start_native(
                server,
                host=bind_host,
                port=port,
                ssl=tls,
                prefix=args.prefix,
                proxy_protocol=args.trust_proxy if args.proxy_protocol else (),
                probes=probes,
            )
        except OSError as exc:
            print(
                f"rdv serve: cannot listen on {args.listen}: {listen_error(exc, host, port)}",
                file=sys.stderr,
            )
            return 1
        probe_ports = []
        for number in args.probe_port:  # one at a time: the error names the port, and why
            try:
                probe_ports += await start_probe_ports(probes, bind_host, [number])
            except OSError as exc:
                cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
                why = listen_error(cause, host, number)
                print(f"rdv serve: cannot listen on --probe-port {number}: {why}", file=sys.stderr)
                for opened in probe_ports:
                    await opened.close()
                await front.close()
                return 1
        bound = [_sockname(sock) for sock in front.sockets]
        print(summary.listening_line(front.url, bound), file=sys.stderr, flush=True)
        summary.log_limits(args, limits, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        summary.log_front(args, bound, front.port, [p.port for p in probe_ports], relay_silence())
        log.debug("event loop: %s", type(asyncio.get_running_loop()).__module__)
        # After the "listening" line (the first, which scripts wait for), in the log's form.
        if tls is not None and (warning := validity_warning(args.tls_cert)) is not None:
            log.warning("%s", warning)
        chores = [asyncio.ensure_future(give_back_memory(server))]
        if watch is not None:
            chores.append(asyncio.ensure_future(watch.run()))
        try:
            signal_name = await stop.first
        finally:
            for chore in chores:
                chore.cancel()
        started = time.monotonic()
        # SIGHUP reloads many daemons: say at once that this one stops, and what reloads.
        hup = " (nothing to reload: SIGUSR1 reloads the TLS certificate)" * (
            signal_name == "SIGHUP"
        )
        log.info("%s: shutting down%s", signal_name, hup)
        await _shut_down(server, args.drain, stop)
        await front.close()
        for probe_port in probe_ports:
            await probe_port.close()
        log.info("stopped in %.2fs", time.monotonic() - started)
        return 0
    finally:
        events.close()


def run(args: argparse.Namespace) -> int:
    """Run ``rdv serve`` until SIGINT/SIGTERM/SIGHUP."""
    try:
        host, port = parse_listen(args.listen, port_alone=True)
    except ValueError as exc:
        print(f"rdv serve: invalid --listen {args.listen!r}: {exc}", file=sys.stderr)
        return 2
    if len(args.probe_port) > 16:
        print("rdv serve: at most 16 --probe-port", file=sys.stderr)
        return 2
    # Both used to end in "cannot listen on a probe port: address already in use" (the
    # port was bound already, by us), which sends the operator hunting for another process.
    for n, probe_port in enumerate(args.probe_port):
        if probe_port == port:
            print(
                f"rdv serve: --probe-port {probe_port} is the --listen port, "
                "which answers the doctor's probes already",
                file=sys.stderr,
            )
            return 2
        if probe_port in args.probe_port[:n]:
            print(f"rdv serve: --probe-port {probe_port} given twice", file=sys.stderr)
            return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("rdv serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        from rdv_core.server import make_observed_addr

        make_observed_addr(args.trust_proxy)
    except ValueError as exc:
        print(f"rdv serve: invalid --trust-proxy: {exc}", file=sys.stderr)
        return 2
    try:
        from rdv_core.server import relay_silence

        relay_silence(strict=True)
    except ValueError as exc:  # "2m" was taken as the default without a word
        print(f"rdv serve: {exc}", file=sys.stderr)
        return 2
    if args.proxy_protocol and not args.trust_proxy:
        print(
            "rdv serve: --proxy-protocol needs --trust-proxy CIDR (the balancers)", file=sys.stderr
        )
        return 2
    if args.proxy_protocol and args.tls_cert is not None:
        print(
            "rdv serve: --proxy-protocol with --tls-cert: terminate TLS at the balancer",
            file=sys.stderr,
        )
        return 2
    tls = None
    if args.tls_cert is not None and args.tls_key is not None:
        try:
            tls = tls_context(args.tls_cert, args.tls_key)
        except TlsFilesError as exc:
            print(f"rdv serve: {exc}", file=sys.stderr)
            return 2
        except (OSError, ValueError) as exc:
            print(f"rdv serve: cannot load TLS certificate/key: {exc}", file=sys.stderr)
            return 2
    logs = configure_logging(args.verbose, args.json_logs)
    try:
        return _run_loop(args, host, port, tls)
    finally:
        logs.close()
        # A stop signal from now on changes nothing (exit 0 after the graceful shutdown);
        # ignored, it cannot kill us through the interpreter's shutdown. After the log
        # thread ended: one that this thread took just as it was ignored was printed as
        # "OSError: Signal 15 ignored due to race condition" (1 run in 3 of a burst).
        serve_signals.ignore_held()


def _run_loop(args: argparse.Namespace, host: str, port: int, tls: Any) -> int:
    _raise_fd_limit()
    loop_factory = _loop_factory(args.loop)
    if loop_factory is None and args.loop == "uvloop":
        print("rdv serve: --loop uvloop needs uvloop (pip install uvloop)", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(args, host, port, tls))


def _within_fd_limit(total: int | None) -> int | None:
    """The total lobby cap, lowered so that waiting requests leave a quarter of the fds
    (at least 64) to pairs, request heads and the server itself."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = max(1, soft - max(64, soft // 4))
    return room if total is None else min(total, room)


def _raise_fd_limit() -> None:
    """Every lobby client and relayed peer holds a socket: allow as many as the system does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as exc:
            log.debug("cannot raise the open-file limit: %s", exc)
        else:
            log.debug("open-file limit raised from %d to %d", soft, hard)


def _loop_factory(choice: str) -> Any:
    """uvloop's loop factory for ``auto``/``uvloop`` when it is installed, else None."""
    if choice == "asyncio":
        return None
    import importlib

    try:
        # Imported by name: uvloop is optional, so type checkers may not know it.
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    """``python -m rdv_tui.cli.commands.serve [options]``: the same as ``rdv serve``."""
    parser = argparse.ArgumentParser(prog="rdv")
    add_parser(parser.add_subparsers(dest="command"))
    return run(parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
