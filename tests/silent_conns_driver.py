"""Run inside a fresh network namespace: conns other than fast start's direct paths go
silent (a blackhole: packets dropped, no RST); prints one JSON object.

Used by ``tests/test_conns_silent.py`` (docs/PROTOCOL.md section 16.11). Real processes
(``rdv serve``, ``rdv dial/accept``, ``rdv send/receive``) on the namespace's loopback;
nftables drops packets in the output hook (both ends are in this namespace: both
directions).

- ``direct``: classic pipe mode (no fast start), direct; after a line each way every TCP
  packet but the server's is dropped; the dialer writes a line (never acknowledged), the
  accepter stays idle (keepalive probes, unanswered).
- ``idle``: the same, nobody writes after the blackhole (keepalive probes both ways).
- ``relay``: classic pipe mode on the relay (``--spaces none``); the dialer's conn to the
  server is dropped, the dialer idle: it must end naming the silence.
- ``relay-fast``: the same with ``--fast-start`` (the relay path of fast start's stream).
- ``relay-partner``: classic pipe mode on the relay; the *accepter's* conn to the server is
  dropped and the dialer, whose own path is fine, keeps sending: the server
  (``RDV_RELAY_SILENCE``) must end the pair, so that the dialer ends too.
- ``transfer``: ``rdv send --no-fast-start`` / ``rdv receive``, direct, blackholed
  mid-transfer, then run again without the rules (resume).

Usage: ``python silent_conns_driver.py MODE`` with ``lo`` up in the namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo
from rdv_core.client._silence import SILENCE_ENV
from rdv_core.server._relay_silence import RELAY_SILENCE_ENV

from tests.faststart_fallback_driver import count, events, nft, shared_port, start_server, wait_for

RDV = [sys.executable, "-m", "rdv_tui"]
TOKEN = "silence-tok"
#: Generous: the code before the fix waits TCP's own timeout (about 15 minutes).
WAIT = 120.0
TABLE = "silence"
#: The silence limit the peers run with (``RDV_DIRECT_SILENCE``): 4 s, not 15.
SILENCE_S = 4


def table(port: int) -> None:
    """A chain whose first rules let the server's conns pass (separate rules: nft 1.0.6
    merges ``sport != P dport != P``, see the fallback driver)."""
    nft("add", "table", "inet", TABLE)
    nft("add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0; }")


def drop_all_but_server(port: int) -> None:
    nft("add", "rule", "inet", TABLE, "out", "tcp", "sport", str(port), "accept")
    nft("add", "rule", "inet", TABLE, "out", "tcp", "dport", str(port), "accept")
    nft("add", "rule", "inet", TABLE, "out", "meta", "l4proto", "tcp", "drop")


def drop_port(port: int) -> None:
    """One conn's packets, both ways (its local port on either end)."""
    nft("add", "rule", "inet", TABLE, "out", "tcp", "sport", str(port), "drop")
    nft("add", "rule", "inet", TABLE, "out", "tcp", "dport", str(port), "drop")


def env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", SILENCE_ENV: str(SILENCE_S)}


def start(work: Path, name: str, *args: str, stdin: int = subprocess.DEVNULL) -> Any:
    """``rdv ARGS`` with stdout, stderr and events to ``NAME.out``, ``.err``, ``.jsonl``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    out, err = os.open(work / f"{name}.out", flags), os.open(work / f"{name}.err", flags)
    try:
        return subprocess.Popen(
            [*RDV, *args, "--events", str(work / f"{name}.jsonl")],
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=env(),
        )
    finally:
        os.close(out)
        os.close(err)


def picked_relay(work: Path, name: str) -> bool | None:
    for ev in events(work / f"{name}.jsonl"):
        if ev["type"] == "Picked":
            return bool(ev["is_relay"])
    return None


def until_ended(procs: dict[str, Any], which: tuple[str, ...]) -> dict[str, float]:
    """Seconds until each of ``which`` ended (from now), within :data:`WAIT`."""
    start_at, ended = time.monotonic(), dict[str, float]()
    while set(ended) != set(which) and time.monotonic() < start_at + WAIT:
        for side in which:
            if side not in ended and procs[side].poll() is not None:
                ended[side] = round(time.monotonic() - start_at, 2)
        time.sleep(0.05)
    if set(ended) != set(which):
        raise TimeoutError(f"waited {WAIT:.0f} s for {which} to end: {ended}")
    return ended


def pipe(work: Path, url: str, port: int, mode: str, procs: list[Any]) -> dict[str, Any]:
    flags = {
        "direct": (),
        "idle": (),
        "relay": ("--spaces", "none"),
        "relay-fast": ("--fast-start",),
        "relay-partner": ("--spaces", "none"),
    }[mode]
    peers: dict[str, Any] = {}
    for side in ("accept", "dial"):
        extra = flags if side == "dial" or mode == "relay-fast" else ()
        if mode == "relay-fast":
            extra = (*extra, "--spaces", "none")
        peers[side] = start(work, side, side, *extra, url, TOKEN, stdin=subprocess.PIPE)
        procs.append(peers[side])
    for side, proc in peers.items():
        proc.stdin.write(f"one from {side}\n".encode())
        proc.stdin.flush()
    wait_for("the first lines", lambda: all(count(work / f"{s}.out", "one") for s in peers))
    report: dict[str, Any] = {"relay": {s: picked_relay(work, s) for s in peers}}
    if mode in ("direct", "idle"):
        drop_all_but_server(port)
        if mode == "direct":
            peers["dial"].stdin.write(b"two from dial\n")
            peers["dial"].stdin.flush()
        report["ended_s"] = until_ended(peers, ("dial", "accept"))
    elif mode == "relay-partner":
        drop_port(shared_port(work / "accept.jsonl"))  # the accepter's conn to the server
        # More than every buffer on the way holds: the dialer's writes block on old code.
        feed = threading.Thread(target=_feed, args=(peers["dial"].stdin,), daemon=True)
        feed.start()
        report["ended_s"] = until_ended(peers, ("dial",))
    else:
        drop_port(shared_port(work / "dial.jsonl"))  # the dialer's conn to the server
        report["ended_s"] = until_ended(peers, ("dial",))
    report["codes"] = {s: p.poll() for s, p in peers.items()}
    return report


def _feed(stdin: Any) -> None:
    with contextlib.suppress(OSError):  # the dialer ended: its stdin is a broken pipe
        for _ in range(64):
            stdin.write(b"x" * (1 << 20))
        stdin.flush()


def receiving(dl: Path) -> bool:
    part = dl / "big.bin.rdvpart"
    return part.exists() and part.stat().st_size > 0


def transfer(work: Path, url: str, port: int, procs: list[Any]) -> dict[str, Any]:
    """``rdv send`` / ``rdv receive`` blackholed mid-transfer, then run again (resume)."""
    src, dl = work / "big.bin", work / "dl"
    with src.open("wb") as out:
        out.truncate(256 * 1024 * 1024)  # a hole: read fast
    dl.mkdir()
    got: dict[str, Any] = {}
    for run, code in (("cut", "5601-owl-jade"), ("again", "5602-owl-jade")):
        server = ("--server", url, "--no-fast-start")
        send = start(work, f"send-{run}", "send", str(src), "--code", code, *server)
        receive = start(work, f"receive-{run}", "receive", code, "--dir", str(dl), "--yes", *server)
        pair = {"send": send, "receive": receive}
        procs.extend(pair.values())
        if run == "cut":
            wait_for("bytes received", lambda: receiving(dl))
            drop_all_but_server(port)
        ended = until_ended(pair, ("send", "receive"))
        got[run] = {
            "relay": {s: picked_relay(work, f"{s}-{run}") for s in pair},
            "codes": {s: p.poll() for s, p in pair.items()},
            "ended_s": ended,
            "stderr": {s: (work / f"{s}-{run}.err").read_text(errors="replace") for s in pair},
        }
        if run == "cut":
            nft("flush", "chain", "inet", TABLE, "out")
    got["same"] = (dl / "big.bin").read_bytes() == src.read_bytes()
    return got


def main(mode: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rdv-silence-"))
    procs: list[Any] = []
    report: dict[str, Any] = {"mode": mode}
    try:
        if mode == "relay-partner":
            os.environ[RELAY_SILENCE_ENV] = str(SILENCE_S)  # the server's limit
        url, port = start_server(procs)
        table(port)
        if mode == "transfer":
            report.update(transfer(work, url, port, procs))
        else:
            report.update(pipe(work, url, port, mode, procs))
            report["stderr"] = {
                s: (work / f"{s}.err").read_text(errors="replace") for s in ("dial", "accept")
            }
        print(json.dumps(report))
    except Exception as exc:  # say what the peers said, then fail
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["stderr"] = {p.name: p.read_text(errors="replace") for p in work.glob("*.err")}
        print(json.dumps(report))
        raise SystemExit(1) from exc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1])
