"""Run the real rdv server and two real rdv peers inside a lab, and judge the outcome.

One run: ``rdv accept`` starts first and the runner waits until the server's event stream
shows it in the lobby, so the dialer's ``Picked.elapsed_s`` measures the race, not process
start-up. Then ``rdv dial`` starts, the runner pipes a random payload into the dialer's stdin
and reads it back from the accepter's stdout: the sha256 of both must match, which checks
data integrity on whatever path the dialer picked. Both peers' ``--events`` JSONL and the
server's events for the run's token make up the run's record (:mod:`._run_record`).

Outcome: ``direct`` if the dialer's ``Picked`` event has ``is_relay`` false, ``relay`` if
true, ``failed`` when there is no ``Picked`` (or the data did not arrive intact).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Final

from rdv_core.lab._conntrack import lab_remaps
from rdv_core.lab._lab import Lab, exit_reason, tail
from rdv_core.lab._netns import LabError
from rdv_core.lab._run_record import (
    Json,
    PresetResult,
    RunResult,
    direct_attempts,
    outcome_of,
    read_events,
    server_events_for,
)
from rdv_core.lab._spec import LabSpec

# The run's record moved to _run_record; importers take these names from here too.
__all__ = [
    "DEFAULT_PAYLOAD",
    "LOBBY_WAIT",
    "LOSSY_PAYLOAD",
    "RUN_TIMEOUT",
    "Json",
    "LabRunner",
    "PresetResult",
    "RunResult",
    "direct_attempts",
    "outcome_of",
    "read_events",
    "run_preset",
    "server_events_for",
]

log = logging.getLogger("rdv.lab")

#: Payload piped through each run (a few hundred KiB: several windows, cheap to hash).
DEFAULT_PAYLOAD: Final = 256 * 1024
#: Payload on lossy labs: TCP over ~36% round-trip loss crawls, so keep it to a few segments.
LOSSY_PAYLOAD: Final = 8 * 1024
#: Per-run limit: lobby wait, race, transfer and exit of both peers.
RUN_TIMEOUT: Final = 30.0
#: How long the accepter may take to start and reach the server's lobby.
LOBBY_WAIT: Final = 10.0


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
