"""Run inside a fresh network namespace: fast-start pipe mode whose direct path goes
silent (a blackhole: every packet dropped, no RST) after the switch; prints one JSON object.

Used by ``tests/test_faststart_silent.py`` (docs/PROTOCOL.md section 16.10). Real
processes (``rdv serve``, ``rdv accept/dial --fast-start``) on the namespace's loopback;
nftables drops the direct conns' packets both ways (neither port the server's: both ends
are in this namespace, so the output hook sees both directions).

- ``unproven``: the direct conns' stream frames are held from the start (as in
  ``faststart_fallback_driver.py``: the switch happens, it is never proven), then the
  blackhole; the stream must go back on the relay, then the rules go and a later attempt
  switches for good: nothing lost.
- ``retired``: the relay is retired first (the direct path carried data both ways), then
  the blackhole, the dialer writes a line (its data is never acknowledged) and the accepter
  stays idle (nothing to send): both must end, non-zero, naming the silence.

Usage: ``python faststart_silent_driver.py MODE`` with ``lo`` up in the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo
from rdv_core.client._silence import SILENCE_ENV

from tests.faststart_fallback_driver import (
    count,
    events,
    nft,
    start_peers,
    start_server,
    wait_for,
)

RDV = [sys.executable, "-m", "rdv_tui"]
TOKEN = "silent-tok"
#: Generous: the code before the fix waits TCP's own timeout (about 15 minutes).
WAIT = 120.0
TABLE = "silent"
#: The last path's silence limit the peers run with (``RDV_DIRECT_SILENCE``): 4 s, not 15,
#: each test waits it out (the idle side still needs its two keepalive probes, ~10 s).
SILENCE_S = 4
#: Frame types held on the direct conns (``unproven``): DATA to EOF as in the fallback
#: driver, and PING/PONG (a switch's first frame on its path may be a PING: 16.10).
HOLD_FRAMES = "@th,256,8 { 1, 2, 3, 4, 5, 6, 7 }"


def rules(port: int, *, hold: bool) -> None:
    nft("add", "table", "inet", TABLE)
    nft("add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0; }")
    # Separate accept rules (nft 1.0.6 merges "sport != P dport != P": see the fallback
    # driver): the server's conns pass, whatever comes after.
    nft("add", "rule", "inet", TABLE, "out", "tcp", "sport", str(port), "accept")
    nft("add", "rule", "inet", TABLE, "out", "tcp", "dport", str(port), "accept")
    if hold:
        nft("add", "rule", "inet", TABLE, "out", *HOLD_FRAMES.split(), "drop")


def blackhole() -> None:
    """Every other TCP packet dropped, both ways: the direct path goes silent."""
    nft("add", "rule", "inet", TABLE, "out", "meta", "l4proto", "tcp", "drop")


def retired(work: Path, side: str) -> bool:
    return any(e["type"] == "RelayRetired" for e in events(work / f"{side}.jsonl"))


def start(work: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """``rdv ARGS`` with stderr to ``NAME.err`` and events to ``NAME.jsonl``."""
    err = os.open(work / f"{name}.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        return subprocess.Popen(
            [*RDV, *args, "--events", str(work / f"{name}.jsonl")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "COLUMNS": "200", SILENCE_ENV: str(SILENCE_S)},
        )
    finally:
        os.close(err)


def receiving(work: Path, dl: Path) -> bool:
    """Both sides of the first run direct for good, and bytes arriving."""
    part = dl / "big.bin.rdvpart"
    direct = all(retired(work, f"{side}-cut") for side in ("send", "receive"))
    return direct and part.exists() and part.stat().st_size > 0


def transfer(work: Path, url: str, procs: list[subprocess.Popen[Any]]) -> dict[str, Any]:
    """``rdv send`` / ``rdv receive`` blackholed mid-transfer, then run again (resume)."""
    src, dl = work / "big.bin", work / "dl"
    with src.open("wb") as out:
        out.truncate(256 * 1024 * 1024)  # a hole: read fast
    dl.mkdir()
    got: dict[str, Any] = {}
    for run, code in (("cut", "5501-fox-opal"), ("again", "5502-fox-opal")):
        server = ("--server", url)
        pair = {
            "send": start(work, f"send-{run}", "send", str(src), "--code", code, *server),
            "receive": start(
                work, f"receive-{run}", "receive", code, "--dir", str(dl), "--yes", *server
            ),
        }
        procs.extend(pair.values())
        if run == "cut":
            wait_for("the relay retired, bytes received", lambda: receiving(work, dl))
            blackhole()
        start_at = time.monotonic()
        codes = {side: proc.wait(WAIT) for side, proc in pair.items()}
        got[run] = {
            "codes": codes,
            "ended_s": round(time.monotonic() - start_at, 2),
            "stderr": {s: (work / f"{s}-{run}.err").read_text(errors="replace") for s in pair},
        }
        if run == "cut":
            nft("delete", "table", "inet", TABLE)
    got["same"] = (dl / "big.bin").read_bytes() == src.read_bytes()
    return got


def main(mode: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rdv-silent-"))
    procs: list[subprocess.Popen[Any]] = []
    report: dict[str, Any] = {"mode": mode}
    try:
        url, port = start_server(procs)
        rules(port, hold=mode == "unproven")
        if mode == "transfer":
            report.update(transfer(work, url, procs))
            print(json.dumps(report))
            return
        peers = start_peers(work, url, TOKEN, procs, {SILENCE_ENV: str(SILENCE_S)})
        err_of = {side: work / f"{side}.err" for side in peers}
        if mode == "unproven":
            wait_for(
                "both switches", lambda: all(count(p, "switched to p2p") for p in err_of.values())
            )
            blackhole()
            start = time.monotonic()
            wait_for(
                "both back on the relay",
                lambda: all(count(p, "back on the relay") for p in err_of.values()),
            )
            report["noticed_s"] = round(time.monotonic() - start, 2)
            nft("delete", "table", "inet", TABLE)
            wait_for("the relay retired", lambda: all(retired(work, s) for s in peers))
            for side, proc in peers.items():
                assert proc.stdin is not None
                proc.stdin.write(f"two from {side}\n".encode())
                proc.stdin.close()
        else:
            wait_for("the relay retired", lambda: all(retired(work, s) for s in peers))
            wait_for("the first lines", lambda: all(count(work / f"{s}.out", "one") for s in peers))
            blackhole()
            start = time.monotonic()
            dial_in = peers["dial"].stdin
            assert dial_in is not None
            dial_in.write(b"two from dial\n")
            dial_in.flush()
            deadline = start + WAIT
            ended: dict[str, float] = {}
            while len(ended) < len(peers) and time.monotonic() < deadline:
                for side, proc in peers.items():
                    if side not in ended and proc.poll() is not None:
                        ended[side] = round(time.monotonic() - start, 2)
                time.sleep(0.05)
            report["ended_s"] = ended
            if len(ended) < len(peers):
                raise TimeoutError(f"waited {WAIT:.0f} s for both peers to end: {ended}")
        report["codes"] = {side: proc.wait(WAIT) for side, proc in peers.items()}
        report["stderr"] = {s: (work / f"{s}.err").read_text(errors="replace") for s in peers}
        report["stdout"] = {s: (work / f"{s}.out").read_text(errors="replace") for s in peers}
        report["events"] = {s: events(work / f"{s}.jsonl") for s in peers}
        print(json.dumps(report))
    except Exception as exc:  # say what the peers said, then fail
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["stderr"] = {p.name: p.read_text(errors="replace") for p in work.glob("*.err")}
        report["events"] = {p.name: events(p) for p in work.glob("*.jsonl")}
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
