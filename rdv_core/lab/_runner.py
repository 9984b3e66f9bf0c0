"""Run the real rdv server and two real rdv peers inside a lab, and judge the outcome.

One run: ``rdv accept`` starts first and the runner waits until the server's event stream
shows it in the lobby, so the dialer's ``Picked.elapsed_s`` measures the race, not process
start-up. Then ``rdv dial`` starts, the runner pipes a random payload into the dialer's stdin
and reads it back from the accepter's stdout: the sha256 of both must match, which checks
data integrity on whatever path the dialer picked. Both peers' ``--events`` JSONL and the
server's events for the run's token make up the run's record.

Outcome: ``direct`` if the dialer's ``Picked`` event has ``is_relay`` false, ``relay`` if
true, ``failed`` when there is no ``Picked`` (or the data did not arrive intact).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from rdv_core.lab._conntrack import lab_remaps
from rdv_core.lab._lab import Lab, exit_reason, tail
from rdv_core.lab._netns import LabError
from rdv_core.lab._spec import LabSpec, Outcome
from rdv_core.wire import Addr, AddrError

log = logging.getLogger("rdv.lab")

#: Payload piped through each run (a few hundred KiB: several windows, cheap to hash).
DEFAULT_PAYLOAD: Final = 256 * 1024
#: Payload on lossy labs: TCP over ~36% round-trip loss crawls, so keep it to a few segments.
LOSSY_PAYLOAD: Final = 8 * 1024
#: Per-run limit: lobby wait, race, transfer and exit of both peers.
RUN_TIMEOUT: Final = 30.0
#: How long the accepter may take to start and reach the server's lobby.
LOBBY_WAIT: Final = 10.0

Json = dict[str, Any]


@dataclass(slots=True)
class RunResult:
    """One run of one lab.

    Attributes:
        outcome: ``direct``, ``relay`` or ``failed``.
        connect_ms: The dialer's ``Picked.elapsed_s`` in ms (None without ``Picked``).
        chosen: The picked candidate's address (the server's for the relay).
        events: ``dialer``, ``accepter`` and ``server`` event lists (JSON objects).
        data_ok: The payload arrived intact (None when no conn was picked).
        payload_bytes: Size of the payload sent from dialer to accepter.
        received_bytes: What the accepter wrote to stdout.
        error: Why the run failed, in words (empty when it did not).
        duration_s: Wall time of the whole run.
        port_remaps: After a run that did not go direct, the peers' ports that a
            port-preserving router did not keep (:meth:`PortRemap.describe` lines): the
            router's port clash explains the relay (docs/LAB-NOTES.md section 11).
    """

    outcome: Outcome
    connect_ms: float | None
    chosen: str | None
    events: dict[str, list[Json]]
    data_ok: bool | None = None
    payload_bytes: int = 0
    received_bytes: int = 0
    error: str = ""
    duration_s: float = 0.0
    chosen_space: str = ""
    port_remaps: list[str] = field(default_factory=list)

    def to_json(self) -> Json:
        """The run as ``rdv lab run --json`` prints it (``port_remaps``, ``error`` only when
        any: a failed run's JSON said ``failed`` and not why, where the text said it)."""
        out: Json = {
            "outcome": self.outcome,
            "connect_ms": None if self.connect_ms is None else round(self.connect_ms, 3),
            "chosen": self.chosen,
            "events": self.events,
        }
        if self.port_remaps:
            out["port_remaps"] = self.port_remaps
        if self.error:
            out["error"] = self.error
        return out

    @property
    def chosen_family(self) -> int | None:
        """4 or 6 for the picked address, None without one."""
        if self.chosen is None:
            return None
        try:
            return 4 if Addr.parse(self.chosen).is_ipv4 else 6
        except AddrError:
            return None

    @property
    def path(self) -> str:
        """A path label: ``relay``, ``direct public4``, or ``failed``."""
        if self.outcome == "direct":
            return f"direct {self.chosen_space or '?'}"
        return self.outcome


@dataclass(slots=True)
class PresetResult:
    """All runs of one preset."""

    spec: LabSpec
    runs: list[RunResult] = field(default_factory=list)
    build_ms: float = 0.0
    impairment: str = "none"

    def summary(self) -> Json:
        """Counts, p50/p90 time to connected, chosen paths, data checks."""
        counts = Counter(r.outcome for r in self.runs)
        times = sorted(r.connect_ms for r in self.runs if r.connect_ms is not None)
        return {
            "runs": len(self.runs),
            "direct": counts["direct"],
            "relay": counts["relay"],
            "failed": counts["failed"],
            "p50_ms": _percentile(times, 50),
            "p90_ms": _percentile(times, 90),
            "chosen": dict(Counter(r.path for r in self.runs).most_common()),
            "data_verified": sum(1 for r in self.runs if r.data_ok),
            "port_remaps": sum(1 for r in self.runs if r.port_remaps),
            "expected": self.spec.expect,
        }

    def to_json(self) -> Json:
        """The whole ``rdv lab run --json`` object."""
        return {
            "preset": self.spec.name,
            "runs": [r.to_json() for r in self.runs],
            "summary": self.summary(),
        }


def _percentile(sorted_values: Sequence[float], pct: int) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return round(sorted_values[0], 1)
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 1)


def outcome_of(dialer_events: Sequence[Json]) -> tuple[Outcome, float | None, str | None, str]:
    """``(outcome, connect_ms, chosen addr, chosen space)`` from the dialer's events."""
    for ev in dialer_events:
        if ev.get("type") == "Picked":
            cand = ev.get("candidate") or {}
            outcome: Outcome = "relay" if ev.get("is_relay") else "direct"
            return (
                outcome,
                float(ev.get("elapsed_s", 0.0)) * 1000.0,
                cand.get("addr"),
                str(cand.get("space", "")),
            )
    return "failed", None, None, ""


def direct_attempts(dialer_events: Sequence[Json]) -> str:
    """What became of each direct candidate the dialer tried, in one line.

    E.g. ``10.0.2.2:4000 unreachable; 203.0.113.12:4000 refused x11, cancelled``: the
    answer to "why not direct?" when a run ends on the relay.
    """
    order: list[str] = []
    retries: Counter[str] = Counter()
    reasons: dict[str, list[str]] = {}
    for ev in dialer_events:
        cand = ev.get("candidate") or {}
        addr = cand.get("addr")
        if not addr or cand.get("origin") == "relay":
            continue
        kind = ev.get("type")
        if addr not in reasons:
            order.append(addr)
            reasons[addr] = []
        if kind == "DialRetried":
            if not retries[addr]:
                reasons[addr].append(str(ev.get("reason")))
            # Retry events may be throttled: the attempt number is the true count.
            retries[addr] = max(retries[addr], int(ev.get("attempt") or 0))
        elif kind in ("CandidateFailed", "HandshakeFailed"):
            reasons[addr].append(str(ev.get("reason")))
        elif kind in ("CandidateSkipped", "InboundRejected"):
            reasons[addr].append(f"skipped ({ev.get('reason')})")
        elif kind in ("HandshakeOk", "Discarded"):
            reasons[addr].append("ok" if kind == "HandshakeOk" else "discarded")
    parts = []
    for addr in order:
        texts = reasons[addr]
        if retries[addr] and texts:
            texts[0] = f"{texts[0]} x{retries[addr] - 1}"
        if texts == ["cancelled"]:
            texts = ["no answer (SYN dropped), cancelled"]
        parts.append(f"{addr} {', '.join(texts) or 'pending'}")
    return "; ".join(parts)


def read_events(path: str) -> list[Json]:
    """JSON objects from a JSONL file (missing file: empty; bad lines are skipped)."""
    out: list[Json] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: skipping a line that is not JSON", path)
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except FileNotFoundError:
        pass
    return out


def server_events_for(events: Sequence[Json], token: str) -> list[Json]:
    """The server events of one token: its requests, its pair(s) and their ends."""
    pair_ids = {
        ev.get("pair_id")
        for ev in events
        if ev.get("type") == "PairMatched" and ev.get("token") == token
    }
    return [ev for ev in events if ev.get("token") == token or ev.get("pair_id") in pair_ids]


class _Pump:
    """Feed bytes to a child's stdin / drain its stdout in threads (no pipe deadlock)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def write(self, stream: IO[bytes], data: bytes) -> None:
        def go() -> None:
            try:
                stream.write(data)
                stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the peer process died: the run's events will say why
            finally:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

        self._start(go)

    def read(self, stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
        def go() -> None:
            with contextlib.suppress(OSError, ValueError):
                while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
                    sink(chunk)

        self._start(go)

    def _start(self, fn: Callable[[], None]) -> None:
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, deadline: float) -> None:
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))


class LabRunner:
    """Runs rdv peers in a built lab whose server is up (see :meth:`Lab.start_server`)."""

    def __init__(self, lab: Lab, *, payload_size: int | None = None) -> None:
        self.lab = lab
        spec = lab.spec
        lossy = any(r.impairment.loss > 0 for r in spec.routers)
        self.payload_size = (
            payload_size
            if payload_size is not None
            else (LOSSY_PAYLOAD if lossy else DEFAULT_PAYLOAD)
        )
        self._count = 0

    def _peer(self, role: str, method: str, token: str, events: str, log_name: str) -> Any:
        argv = self.lab.rdv_argv(
            method,
            self.lab.plan.server_url_for(role),
            token,
            "--spaces",
            self.lab.spec.spaces,
            "--events",
            events,
            "--timeout",
            str(RUN_TIMEOUT),
            *self.lab.peer_args(role),
        )
        return self.lab.spawn(
            role,
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.lab.log_file(log_name),
        )

    def run_once(self) -> RunResult:
        """One dial/accept race with a payload; never raises for an rdv failure."""
        self._count += 1
        n = self._count
        lab = self.lab
        spec = lab.spec
        token = f"lab{n}-{secrets.token_hex(6)}"
        wd = lab.workdir
        paths = {k: os.path.join(wd, f"run{n}-{k}.jsonl") for k in ("dialer", "accepter")}
        payload = os.urandom(self.payload_size)
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        errors: list[str] = []

        accepter = self._peer(
            spec.accepter, "accept", token, paths["accepter"], f"run{n}-accepter.stderr"
        )
        if not self._wait_in_lobby(token, accepter, min(deadline, started + LOBBY_WAIT)):
            # Without an accepter in the lobby a dialer would only wait for --timeout.
            accepter.kill()
            accepter.wait()
            stderr = os.path.join(wd, f"run{n}-accepter.stderr")
            return RunResult(
                outcome="failed",
                connect_ms=None,
                chosen=None,
                events={
                    "dialer": [],
                    "accepter": read_events(paths["accepter"]),
                    "server": self._server_events(token, wait=False),
                },
                payload_bytes=len(payload),
                error=f"the accepter never reached the server's lobby "
                f"(exit {accepter.returncode}): {tail(stderr)}",
                duration_s=time.monotonic() - started,
            )
        dialer = self._peer(spec.dialer, "dial", token, paths["dialer"], f"run{n}-dialer.stderr")

        received = hashlib.sha256()
        got = [0]

        def sink(chunk: bytes) -> None:
            received.update(chunk)
            got[0] += len(chunk)

        pump = _Pump()
        pump.write(dialer.stdin, payload)
        pump.read(accepter.stdout, sink)
        pump.read(dialer.stdout, lambda _chunk: None)
        # The accepter exits once the dialer's half-close arrives (pipe mode); its own stdin
        # stays open until then, or the relay would end at its EOF before our data passed.
        exits: list[str] = []
        for proc, name in ((accepter, "accepter"), (dialer, "dialer")):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                errors.append(f"the {name} did not finish within {RUN_TIMEOUT:g} s")
                proc.kill()
                proc.wait()
            else:
                exits.append(exit_reason(name, proc.returncode, f"{wd}/run{n}-{name}.stderr"))
            if proc is accepter and accepter.stdin is not None:
                with contextlib.suppress(OSError):
                    accepter.stdin.close()
        pump.join(time.monotonic() + 2.0)

        dialer_events = read_events(paths["dialer"])
        accepter_events = read_events(paths["accepter"])
        server_events = self._server_events(token)
        picked, connect_ms, chosen, space = outcome_of(dialer_events)
        outcome = picked
        data_ok: bool | None = None
        if picked != "failed" and any(exits):  # no success, whatever the path and the data
            errors += [f"picked {picked}, then {why}" for why in exits if why]
            outcome = "failed"
        if picked != "failed":
            data_ok = (
                got[0] == len(payload) and received.digest() == hashlib.sha256(payload).digest()
            )
            if not data_ok:
                errors.append(
                    f"data check failed: sent {len(payload)} bytes, received {got[0]}"
                    + ("" if got[0] != len(payload) else " with a different sha256")
                )
        else:
            reason = next(
                (
                    e.get("reason", "") + " " + e.get("detail", "")
                    for e in dialer_events
                    if e.get("type") == "AttemptFailed"
                ),
                "",
            ).strip()
            errors.append(
                f"no conn picked{': ' + reason if reason else ''} "
                f"(dialer exit {dialer.returncode}, accepter exit {accepter.returncode})"
            )
        # Before the next run adds its own entries: why did this one not go direct?
        remaps = [] if picked == "direct" else self._remaps(dialer_events, accepter_events)
        return RunResult(
            outcome=outcome,
            connect_ms=connect_ms,
            chosen=chosen,
            chosen_space=space,
            port_remaps=remaps,
            events={"dialer": dialer_events, "accepter": accepter_events, "server": server_events},
            data_ok=data_ok,
            payload_bytes=len(payload),
            received_bytes=got[0],
            error="; ".join(errors),
            duration_s=time.monotonic() - started,
        )

    def _remaps(self, *peer_events: Sequence[Json]) -> list[str]:
        """The routers' remaps of the peers' shared ports (docs/LAB-NOTES.md section 11)."""
        ports = {
            int(e["port"])
            for events in peer_events
            for e in events
            if e.get("type") == "SelfAddrsGathered" and e.get("port")
        }
        if not ports:
            return []
        spec = self.lab.spec
        hosts = (spec.dialer, spec.accepter)
        return [r.describe() for r in lab_remaps(self.lab, hosts, ports)]

    def _wait_in_lobby(self, token: str, accepter: subprocess.Popen[Any], deadline: float) -> bool:
        path = self.lab.server_events_path
        while time.monotonic() < deadline:
            for ev in read_events(path):
                if ev.get("type") == "PeerJoined" and ev.get("token") == token:
                    return True
            if accepter.poll() is not None:
                return False
            time.sleep(0.005)
        return False

    def _server_events(self, token: str, *, wait: bool = True) -> list[Json]:
        # The server records a pair's end right after both conns close: give it a moment.
        deadline = time.monotonic() + (1.0 if wait else 0.0)
        while True:
            events = server_events_for(read_events(self.lab.server_events_path), token)
            ended = any(e.get("type") in ("RelayEnded", "P2PReported") for e in events)
            if ended or time.monotonic() > deadline:
                return events
            time.sleep(0.01)


def run_preset(
    spec: LabSpec,
    runs: int = 1,
    *,
    rdv_command: Sequence[str],
    payload_size: int | None = None,
    on_run: Callable[[int, RunResult], None] | None = None,
) -> PresetResult:
    """Build ``spec`` once, start the server, do ``runs`` races, tear down.

    Args:
        spec: The lab to build.
        runs: How many dial/accept races.
        rdv_command: The argv that runs rdv (see :class:`~rdv_core.lab.Lab`).
        payload_size: Bytes piped through each run (default: by the lab's loss).
        on_run: Called with the run number and result after each run.

    Raises:
        LabError: when the lab cannot be built or the server does not start.
    """
    if runs < 1:
        raise LabError("runs must be at least 1")
    result = PresetResult(spec)
    with Lab(spec, rdv_command=rdv_command) as lab:
        result.build_ms = lab.build_s * 1000
        result.impairment = lab.impairment_method
        lab.start_server()
        runner = LabRunner(lab, payload_size=payload_size)
        for i in range(runs):
            run = runner.run_once()
            result.runs.append(run)
            if on_run is not None:
                on_run(i + 1, run)
    return result
