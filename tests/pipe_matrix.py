"""A matrix driver for pipe mode's end-of-stream rule (README "End of stream").

Real ``rdv dial`` / ``rdv accept`` processes against a real server on loopback, over each
path (classic direct, classic relay, fast start on the relay, fast start that switches to
p2p), each direction, each kind of the other side's stdin, sizes and stdouts, and the peer
killed mid-stream. Each row: the bytes sent and arrived each way (digests compared), both
exit codes and the last stderr line of each. A row is flagged when bytes were lost and a
side that could tell exited 0, or when nothing was lost and a side exited non-zero.

Run: ``python -m tests.pipe_matrix [--quick] [--only SUBSTRING]``. Tests use :func:`run_case`.
"""

# A driver, not a library: it polls the receivers' files from the loop between processes.
# ruff: noqa: ASYNC110, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native

RDV = [sys.executable, "-m", "rdv_tui"]
#: name -> the flags of that path
PATHS: dict[str, tuple[str, ...]] = {
    "direct": ("--spaces", "loopback4"),
    "relay": ("--spaces", "none"),
    "fs-relay": ("--fast-start", "--spaces", "none"),
    "fs-p2p": ("--fast-start", "--spaces", "loopback4"),
}
#: ``RDV_MATRIX_VERBOSE=1``: both sides with ``-v`` (the last stderr lines say more).
VERBOSE = ("-v",) if os.environ.get("RDV_MATRIX_VERBOSE") else ()
EMPTY = hashlib.sha256(b"").hexdigest()
SIZES = {"0": 0, "1": 1, "64K": 64 * 1024, "5M": 5 * 1024 * 1024, "50M": 50 * 1024 * 1024}


@dataclass
class Case:
    path: str
    sender: str  # "dial", "accept", "both"
    other_stdin: str  # "null", "open" (kept open, closed once all arrived), "trickle"
    size: str
    stdout: str = "file"  # the receiver's: "file", "slow" (a pipe read with pauses), "full"
    kill: str = ""  # "" or "SIG:who" with who "sender" / "receiver"

    @property
    def name(self) -> str:
        kill = f" kill={self.kill}" if self.kill else ""
        other = f"other={self.other_stdin}"
        return f"{self.path} {self.sender} {other} {self.size} out={self.stdout}{kill}"


@dataclass
class Side:
    code: int | None = None
    err: str = ""
    sent: int = 0
    sent_digest: str = EMPTY
    got: int = 0
    got_digest: str = EMPTY

    @property
    def last(self) -> str:
        lines = [line for line in self.err.strip().splitlines() if line.strip()]
        return lines[-1][:160] if lines else ""


@dataclass
class Result:
    case: Case
    dial: Side = field(default_factory=Side)
    accept: Side = field(default_factory=Side)
    seconds: float = 0.0
    verdict: str = ""


class _Sink:
    """The bytes a process writes to a pipe, read here (slowly when asked)."""

    def __init__(self, slow: bool) -> None:
        self.slow = slow
        self.digest = hashlib.sha256()
        self.count = 0

    async def run(self, stream: asyncio.StreamReader) -> None:
        paused = False
        while chunk := await stream.read(64 * 1024):
            self.digest.update(chunk)
            self.count += len(chunk)
            if self.slow:
                await asyncio.sleep(0.005)
                if not paused and self.count >= 1024 * 1024:
                    paused = True
                    await asyncio.sleep(3.0)  # longer than QUIET_AFTER_PEER_S


def _data(size: int, seed: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048  # 64 KiB
    out = bytearray()
    i = 0
    while len(out) < size:
        out += i.to_bytes(8, "big") + block[8:]
        i += 1
    return bytes(out[:size])


async def run_case(url: str, case: Case, tmp: Path, token: str) -> Result:
    result = Result(case)
    started = time.monotonic()
    size = SIZES[case.size]
    senders = {"dial", "accept"} if case.sender == "both" else {case.sender}
    kill_sig, _, kill_who = case.kill.partition(":")
    procs: dict[str, asyncio.subprocess.Process] = {}
    sides = {"dial": result.dial, "accept": result.accept}
    feeds: list[asyncio.Task[None]] = []
    sinks: dict[str, _Sink] = {}
    sink_tasks: list[asyncio.Task[None]] = []
    files: list[IO[bytes]] = []
    trickled: dict[str, bytearray] = {}
    # The accepter first (the lobby holds it), then the dialer.
    for role in ("accept", "dial"):
        side = sides[role]
        stdin: int | IO[bytes]
        feed_bytes: bytes | None = None
        if role in senders:
            data = _data(size, 1 if role == "dial" else 2)
            side.sent, side.sent_digest = len(data), hashlib.sha256(data).hexdigest()
            if case.kill:
                stdin, feed_bytes = asyncio.subprocess.PIPE, data  # fed at a rate, killable
            else:
                src = tmp / f"{role}.in"
                src.write_bytes(data)
                stdin = src.open("rb")
                files.append(stdin)
        elif case.other_stdin == "null":
            stdin = asyncio.subprocess.DEVNULL
        else:
            stdin = asyncio.subprocess.PIPE
        receiver = case.sender != "both" and role not in senders
        stdout: int | IO[bytes]
        if receiver and case.stdout in ("full", "file"):
            where = Path("/dev/full") if case.stdout == "full" else tmp / f"{role}.out"
            stdout = where.open("wb")
            files.append(stdout)
        else:
            stdout = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            *RDV, role, *PATHS[case.path], *VERBOSE, "--timeout", "20", url, token,
            stdin=stdin, stdout=stdout, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        procs[role] = proc
        if proc.stdout is not None:
            sink = _Sink(slow=receiver and case.stdout == "slow")
            sinks[role] = sink
            sink_tasks.append(asyncio.create_task(sink.run(proc.stdout)))
        if feed_bytes is not None:
            feeds.append(asyncio.create_task(_feed(proc, feed_bytes)))
        elif proc.stdin is not None:
            trickled[role] = bytearray()
            feeds.append(asyncio.create_task(_other(proc, case, trickled[role], tmp)))
    for file in files:
        file.close()
    errs = {role: asyncio.create_task(_read_all(p.stderr)) for role, p in procs.items()}
    killer: asyncio.Task[None] | None = None
    if case.kill:
        if kill_who == "sender":
            victim = case.sender if case.sender != "both" else "dial"
        else:
            victim = "accept" if case.sender == "dial" else "dial"
        receiving = "accept" if case.sender == "dial" else "dial"
        killer = asyncio.create_task(
            _kill_later(procs[victim], getattr(signal, kill_sig), tmp / f"{receiving}.out")
        )
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs.values())), 60)
    except TimeoutError:
        for p in procs.values():
            if p.returncode is None:
                p.kill()
        await asyncio.gather(*(p.wait() for p in procs.values()))
        result.verdict = "HANG "
    for t in feeds:
        t.cancel()
    if killer is not None:
        killer.cancel()
    await asyncio.gather(*sink_tasks, return_exceptions=True)
    for role, p in procs.items():
        sides[role].code = p.returncode
        sides[role].err = (await errs[role]).decode(errors="replace")
    for role, held in trickled.items():
        sides[role].sent, sides[role].sent_digest = len(held), hashlib.sha256(held).hexdigest()
    for role in ("dial", "accept"):
        peer = "accept" if role == "dial" else "dial"
        out_file = tmp / f"{peer}.out"
        if peer in sinks:
            sink = sinks[peer]
            sides[role].got, sides[role].got_digest = sink.count, sink.digest.hexdigest()
        elif out_file.exists():
            data = out_file.read_bytes()
            sides[role].got, sides[role].got_digest = len(data), hashlib.sha256(data).hexdigest()
    result.seconds = time.monotonic() - started
    result.verdict += judge(result)
    return result


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Feed ``data`` at about 10 MiB/s (so that a kill at 0.3 s is mid-stream)."""
    assert proc.stdin is not None
    try:
        for i in range(0, len(data), 256 * 1024):
            proc.stdin.write(data[i : i + 256 * 1024])
            await proc.stdin.drain()
            await asyncio.sleep(0.025)
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


async def _read_all(stream: asyncio.StreamReader | None) -> bytes:
    return b"" if stream is None else await stream.read()


async def _other(proc: asyncio.subprocess.Process, case: Case, sent: bytearray, tmp: Path) -> None:
    """The non-sending side's stdin: kept open then closed, or a slow trickle."""
    assert proc.stdin is not None
    try:
        if case.other_stdin == "trickle":
            for i in range(20):
                chunk = bytes([i]) * 1024
                proc.stdin.write(chunk)
                sent += chunk
                await proc.stdin.drain()
                await asyncio.sleep(0.1)
        else:
            # Kept open until the bytes for this side arrived (or 20 s): the README's advice
            # for a relay ("keep the receiving side's stdin open").
            out = tmp / f"{proc_role(case, receiving=True)}.out"
            want = SIZES[case.size] if case.stdout == "file" else 0
            for _ in range(2000):
                if case.kill or (out.exists() and out.stat().st_size >= want):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(10 if case.kill else 2.5 if case.stdout != "file" else 0.1)
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


def proc_role(case: Case, *, receiving: bool) -> str:
    """The role that receives (or sends) in a one-way case."""
    return ("accept" if case.sender == "dial" else "dial") if receiving else case.sender


async def _kill_later(proc: asyncio.subprocess.Process, sig: int, out: Path) -> None:
    """``sig`` to ``proc`` once the receiver's ``out`` holds 2 MiB: mid-stream."""
    while not out.exists() or out.stat().st_size < 2 * 1024 * 1024:
        await asyncio.sleep(0.01)
    if proc.returncode is None:
        proc.send_signal(sig)


def judge(r: Result) -> str:
    """``ok``, or what is wrong: LOSS (bytes lost, a side that could tell exited 0),
    CODE (all arrived, no fault injected, a side exited non-zero)."""
    problems: list[str] = []
    fault = bool(r.case.kill) or r.case.stdout == "full"
    all_arrived = True
    for role, side in (("dial", r.dial), ("accept", r.accept)):
        peer = r.accept if role == "dial" else r.dial
        whole = side.got == side.sent and side.got_digest == side.sent_digest
        if not whole:
            all_arrived = False
            if side.code == 0 and r.case.stdout != "full":
                problems.append(f"{role} sent {side.sent} got {side.got} exit 0")
            # Also on a classic relay: our server passes a reset on (docs/PROTOCOL.md 8),
            # and pipe mode resets a stream it cut (behind the Go server it may not tell).
            if peer.code == 0:
                problems.append(f"{'accept' if role == 'dial' else 'dial'} took cut stream")
    if all_arrived and not fault and (r.dial.code, r.accept.code) != (0, 0):
        problems.append("all arrived, exit != 0")
    return "ok" if not problems else "BAD: " + "; ".join(problems)


def build(quick: bool) -> list[Case]:
    cases: list[Case] = []
    for path in PATHS:
        one_way = ("null", "open", "trickle")
        for sender, others in (("dial", one_way), ("accept", one_way), ("both", ("-",))):
            for other in others:
                sizes = ["0", "1", "64K", "5M"] if not quick else ["1", "5M"]
                for size in sizes:
                    cases.append(Case(path, sender, other, size))
                if sender != "both":
                    cases.append(Case(path, sender, other, "5M", "slow"))
                    cases.append(Case(path, sender, other, "1", "full"))
                    cases.append(Case(path, sender, other, "5M", "full"))
        cases.append(Case(path, "dial", "null", "50M"))
        for sig in ("SIGKILL", "SIGTERM", "SIGINT"):
            for who in ("sender", "receiver"):
                cases.append(Case(path, "dial", "open", "50M", kill=f"{sig}:{who}"))
    return cases


def row(r: Result) -> str:
    d, a = r.dial, r.accept
    return (
        f"{r.case.name:<52} | d->a {d.sent}/{d.got}{'' if d.sent_digest == d.got_digest else '!'}"
        f" a->d {a.sent}/{a.got}{'' if a.sent_digest == a.got_digest else '!'}"
        f" | exit d={d.code} a={a.code} | {r.seconds:4.1f}s | {r.verdict}"
        f"\n      dial:   {d.last}\n      accept: {a.last}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--path", action="append", default=[], choices=list(PATHS))
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cases = [
        c
        for c in build(args.quick)
        if all(o in c.name for o in args.only) and (not args.path or c.path in args.path)
    ] * args.repeat
    gate = asyncio.Semaphore(args.jobs)
    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:

        async def one(i: int, case: Case) -> Result:
            async with gate:
                with tempfile.TemporaryDirectory() as tmp:
                    r = await run_case(front.url, case, Path(tmp), f"matrix-{os.getpid()}-{i}")
                    print(row(r), flush=True)
                    return r

        results = await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
    bad = [r for r in results if r.verdict != "ok"]
    print(f"\n{len(results)} cases, {len(bad)} flagged")
    for r in bad:
        print(row(r))


if __name__ == "__main__":
    asyncio.run(main())
