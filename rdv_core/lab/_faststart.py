"""Fast start in the lab: does the stream end on the direct path, and how soon does it flow?

docs/PROTOCOL.md section 16. One run: ``rdv accept --fast-start`` waits in the lobby,
``rdv dial --fast-start`` joins, half of a random payload goes into the dialer's stdin at
once (it crosses the relay from the first byte), the runner waits until the dialer's
events say the upgrade settled (``RelayRetired``, or a final ``UpgradeFailed``), then
the second half follows and stdin closes: the payload crosses the switch, and its digest
must match at the accepter.

A run is ``direct`` when the dialer retired the relay (the stream ended on the direct
path), ``relay`` when it stayed there, ``failed`` without a fast-start conn, with
damaged data, or when a peer exited non-zero: a direct path that went silent after the
relay retired (docs/PROTOCOL.md 16.10) ends both peers with exit 1, and such a run was
counted ``direct``; its error now says where the stream was and what each peer said.
Measured per run: the first byte, from the dialer's ``101`` (the sender's:
the server answers it first, and the first byte leaves from there) to the accepter's
``FirstByteReceived`` (the byte delivered to its application's reader), on the host's
monotonic clock both peers share in the lab (each side's ``FastStartNegotiated`` names its
clock's origin); the relay round trip (the dialer's least of 3 PINGs); the time from the
relay pick to the switch. The older figure, the accepter's first byte after its *own*
``101``, is kept as ``first_byte_a101_ms``: it leaves out the server's gap between the two
``101`` s and the server-to-dialer leg, so it flatters.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rdv_core.lab._lab import Lab, exit_reason
from rdv_core.lab._runner import LOSSY_PAYLOAD, RUN_TIMEOUT, Json, _Pump, read_events
from rdv_core.lab._spec import LabSpec

#: The dialer's quick upgrade attempts (rdv_core/client/_upgrade.py ``QUICK_ATTEMPTS``;
#: the lab may not import the client).
QUICK_ATTEMPTS: Final = 5
#: Bytes piped through a run, half before the switch and half after.
PAYLOAD: Final = 512 * 1024
#: How long the runner waits for the upgrade to settle before sending the second half.
SETTLE_TIMEOUT: Final = 12.0


@dataclass(slots=True)
class FastRun:
    """One fast-start run."""

    outcome: str  # direct / relay / failed
    data_ok: bool
    first_byte_ms: float | None = None  # dialer's 101 to the accepter's first byte
    first_byte_a101_ms: float | None = None  # accepter: first byte minus its own 101
    relay_rtt_ms: float | None = None
    to_direct_ms: float | None = None  # dialer: relay pick to the switch
    attempts: int = 0
    error: str = ""

    def to_json(self) -> Json:
        """As ``rdv lab faststart --json`` prints it."""
        return {
            "outcome": self.outcome,
            "data_ok": self.data_ok,
            "first_byte_ms": _round(self.first_byte_ms),
            "first_byte_a101_ms": _round(self.first_byte_a101_ms),
            "relay_rtt_ms": _round(self.relay_rtt_ms),
            "to_direct_ms": _round(self.to_direct_ms),
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass(slots=True)
class FastResult:
    """Every run of one preset."""

    spec: LabSpec
    runs: list[FastRun] = field(default_factory=list)

    def summary(self) -> Json:
        """Counts and medians, for the table."""
        firsts = sorted(r.first_byte_ms for r in self.runs if r.first_byte_ms is not None)
        a101s = sorted(r.first_byte_a101_ms for r in self.runs if r.first_byte_a101_ms is not None)
        rtts = sorted(r.relay_rtt_ms for r in self.runs if r.relay_rtt_ms is not None)
        direct = sorted(r.to_direct_ms for r in self.runs if r.to_direct_ms is not None)
        within = sum(
            1
            for r in self.runs
            if r.first_byte_ms is not None
            and r.relay_rtt_ms is not None
            and r.first_byte_ms <= r.relay_rtt_ms
        )
        return {
            "preset": self.spec.name,
            "expect": self.spec.expect,
            "runs": len(self.runs),
            "direct": sum(r.outcome == "direct" for r in self.runs),
            "relay": sum(r.outcome == "relay" for r in self.runs),
            "failed": sum(r.outcome == "failed" for r in self.runs),
            "data_ok": sum(r.data_ok for r in self.runs),
            "first_byte_p50_ms": _median(firsts),
            "first_byte_a101_p50_ms": _median(a101s),
            "relay_rtt_p50_ms": _median(rtts),
            "first_byte_within_rtt": within,
            "to_direct_p50_ms": _median(direct),
        }


def _median(values: Sequence[float]) -> float | None:
    return round(values[len(values) // 2], 1) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class FastStartRunner:
    """Runs fast-start peers in a built lab whose server is up."""

    def __init__(self, lab: Lab, *, payload_size: int | None = None) -> None:
        self.lab = lab
        lossy = any(r.impairment.loss > 0 for r in lab.spec.routers)
        # As the classic runner: TCP over heavy loss crawls, so keep lossy payloads small.
        self.payload_size = payload_size or (LOSSY_PAYLOAD * 2 if lossy else PAYLOAD)
        self._count = 0

    def _peer(self, role: str, method: str, token: str, events: str, n: int) -> Any:
        argv = self.lab.rdv_argv(
            method,
            self.lab.plan.server_url_for(role),
            token,
            "--spaces",
            self.lab.spec.spaces,
            "--fast-start",
            "--events",
            events,
            "--timeout",
            str(RUN_TIMEOUT),
            *self.lab.peer_args(role),  # --proxy, a host's own options (as the classic runner)
        )
        log = self.lab.log_file(f"fast{n}-{method}.stderr")
        return self.lab.spawn(role, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)

    def run_once(self) -> FastRun:
        """One run (see the module docstring); never raises for an rdv failure."""
        self._count += 1
        n = self._count
        spec = self.lab.spec
        token = f"fast{n}-{secrets.token_hex(6)}"
        paths = {k: os.path.join(self.lab.workdir, f"fast{n}-{k}.jsonl") for k in ("d", "a")}
        payload = os.urandom(self.payload_size)
        half = len(payload) // 2
        deadline = time.monotonic() + RUN_TIMEOUT
        accepter = self._peer(spec.accepter, "accept", token, paths["a"], n)
        joined = lambda ev: ev.get("type") == "PeerJoined" and ev.get("token") == token  # noqa: E731
        if not self._wait_for(self.lab.server_events_path, joined, deadline):
            accepter.kill()
            accepter.wait()
            return FastRun("failed", False, error="the accepter never reached the lobby")
        dialer = self._peer(spec.dialer, "dial", token, paths["d"], n)
        received = hashlib.sha256()
        got = [0]

        def sink(chunk: bytes) -> None:
            received.update(chunk)
            got[0] += len(chunk)

        pump = _Pump()
        pump.read(accepter.stdout, sink)
        pump.read(dialer.stdout, lambda _chunk: None)
        errors: list[str] = []
        assert dialer.stdin is not None
        try:
            dialer.stdin.write(payload[:half])
            dialer.stdin.flush()
            self._wait_for(paths["d"], settled, min(deadline, time.monotonic() + SETTLE_TIMEOUT))
            dialer.stdin.write(payload[half:])
            dialer.stdin.close()
        except (BrokenPipeError, OSError, ValueError) as exc:
            errors.append(f"dialer stdin: {exc}")
        exits: list[str] = []
        for proc, name in ((accepter, "accepter"), (dialer, "dialer")):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                errors.append(f"the {name} did not finish within {RUN_TIMEOUT:g} s")
                proc.kill()
                proc.wait()
            else:  # (a peer we killed is the timeout above, not its own failure)
                method = "accept" if proc is accepter else "dial"
                log = os.path.join(self.lab.workdir, f"fast{n}-{method}.stderr")
                exits.append(exit_reason(name, proc.returncode, log))
            if proc is accepter and accepter.stdin is not None:
                accepter.stdin.close()
        pump.join(time.monotonic() + 2.0)
        run = judge(read_events(paths["d"]), read_events(paths["a"]), exits=exits)
        run.data_ok = got[0] == len(payload) and (
            received.digest() == hashlib.sha256(payload).digest()
        )
        if not run.data_ok:
            errors.append(f"data check failed: sent {len(payload)} bytes, received {got[0]}")
            run.outcome = "failed"
        run.error = "; ".join(errors + ([run.error] if run.error else []))
        return run

    def _wait_for(self, path: str, wanted: Callable[[Json], bool], deadline: float) -> bool:
        """Poll an events file until an event is ``wanted``."""
        while time.monotonic() < deadline:
            if any(wanted(ev) for ev in read_events(path)):
                return True
            time.sleep(0.01)
        return False


def settled(ev: Json) -> bool:
    """The upgrade is done for now: the relay retired, or the quick attempts all failed
    (the later ones come 30 s and 120 s on: docs/PROTOCOL.md section 16.5)."""
    kind = ev.get("type")
    if kind == "RelayRetired":
        return True
    return kind == "UpgradeFailed" and (
        bool(ev.get("final")) or int(ev.get("attempt") or 0) >= QUICK_ATTEMPTS
    )


def judge(
    dialer: Sequence[Json], accepter: Sequence[Json], *, exits: Sequence[str] = ()
) -> FastRun:
    """A run's outcome and timings from both peers' events.

    ``exits``: :func:`exit_reason` of each peer (``""`` for exit 0). A peer that exited
    non-zero fails the run whatever path the stream ended on: the events of a direct
    path that went silent after the relay retired (16.10) read like a success, and only
    the exit and the peer's last line say otherwise.
    """
    failed = [why for why in exits if why]
    if not any(e.get("type") == "FastStartNegotiated" and e.get("confirmed") for e in dialer):
        return FastRun("failed", False, error="; ".join(["fast start was not confirmed", *failed]))
    retired = any(e.get("type") == "RelayRetired" for e in dialer)
    run = FastRun("direct" if retired else "relay", False)
    a101 = next((e["t"] for e in accepter if e.get("type") == "ServerResponded"), None)
    d101 = next((e["t"] for e in dialer if e.get("type") == "ServerResponded"), None)
    first = next((e["t"] for e in accepter if e.get("type") == "FirstByteReceived"), None)
    if a101 is not None and first is not None:
        run.first_byte_a101_ms = (first - a101) * 1000
    d_origin, a_origin = _origin(dialer), _origin(accepter)
    if d101 is not None and first is not None and d_origin is not None and a_origin is not None:
        run.first_byte_ms = ((a_origin + first) - (d_origin + d101)) * 1000
    rtts = [e["relay_rtt_s"] for e in dialer if e.get("type") == "UpgradeAttempt"]
    if rtts and rtts[0] is not None:
        run.relay_rtt_ms = rtts[0] * 1000
    run.attempts = len(rtts)
    # The switch that stuck: the last one before the relay was retired. An earlier one may
    # have fallen back to the relay (died or went silent before it was proven: 16.6, 16.10).
    upgraded: Json | None = None
    for e in dialer:
        if e.get("type") == "RelayRetired":
            break
        if e.get("type") == "Upgraded":
            upgraded = e
    if upgraded is not None and retired:
        run.to_direct_ms = float(upgraded["after_s"]) * 1000
    failures = [str(e.get("reason")) for e in dialer if e.get("type") == "UpgradeFailed"]
    if not retired and failures:
        run.error = f"stayed on the relay: {failures[-1]}"
    if failed:
        where = "on the direct path" if retired else "on the relay"
        said = [f"the stream was {where}, then {failed[0]}", *failed[1:]]
        run.error = "; ".join([run.error, *said] if run.error else said)
        run.outcome = "failed"
    return run


def _origin(events: Sequence[Json]) -> float | None:
    """A peer's clock origin on the host's monotonic clock (its confirmed
    ``FastStartNegotiated``): the lab's peers share that clock."""
    for e in events:
        if e.get("type") == "FastStartNegotiated" and e.get("origin") is not None:
            return float(e["origin"])
    return None


def run_faststart(
    spec: LabSpec, runs: int, *, rdv_command: Sequence[str], payload_size: int | None = None
) -> FastResult:
    """Build ``spec``, start its server, do ``runs`` fast-start runs, tear down."""
    result = FastResult(spec)
    with Lab(spec, rdv_command=rdv_command) as lab:
        lab.start_server()
        runner = FastStartRunner(lab, payload_size=payload_size)
        for _ in range(runs):
            result.runs.append(runner.run_once())
    return result
