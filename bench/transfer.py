"""Encrypted file transfer speed: rdv sessions against raw TCP and magic-wormhole.

One file (1 GiB by default) goes from one process to another on loopback:

- ``raw tcp``: Python ``sendall`` / ``recv_into`` with 1 MiB buffers, memory to
  memory (the ceiling for any Python transfer; no file, no crypto).
- ``rdv p2p``: ``rdv_core.session`` over a direct conn found through our server:
  read file, BLAKE3, AES-256-GCM, TCP, AES-256-GCM, write file, BLAKE3 again, verified.
- ``rdv relay``: the same through our server's relay (spaces ``none``): splice(2) on
  Linux, socket to pipe to socket (``rdv_core.server._splice``); with ``--relay-copy``
  also ``rdv relay copy``, the fallback copy relay (``RdvServer(splice=False)``), in the
  same rounds; the server runs the loop ``rdv serve`` runs (uvloop when installed;
  ``--relay-loop asyncio`` adds a row on asyncio's). The table gives its CPU per GiB.
  ``--relay-threads off`` adds ``rdv relay t-off``: bulk flows kept on the loop-driven
  splice (``RDV_RELAY_THREADS=0``) instead of moved by relay threads
  (``rdv_core.server._splice_thread``); ``on`` adds ``t-on``, the default forced.
- ``wormhole p2p`` / ``wormhole relay``: ``wormhole send`` / ``wormhole receive`` with
  a local mailbox server and transit relay on 127.0.0.1. Wormhole's direct hints name
  every interface address of the machine, and this benchmark must not send traffic to
  non-loopback addresses, so its address discovery is pinned to 127.0.0.1 (p2p run),
  and ``--no-listen`` on both sides forces its transit relay (relay run).

For each: GiB/s over the transfer, CPU seconds per GiB (both peers, plus the relay
where there is one), and the ratio to raw TCP measured in the same run. Then the CPU
cost of each step of rdv's data path, alone in this process, and the floor they add
up to: the least CPU per GiB any implementation of this protocol pays here, and the
throughput ceiling that leaves on this machine's cores. The rdv
window starts when the sender calls ``send_paths`` and ends when the receiver's
verdict arrives; wormhole's is whole commands (its rendezvous included, about a
second: see ``setup`` for rdv's equivalent). Before every row that writes the file, the
same amount is written and deleted in the destination (``warm_pages``), so each receiver
writes into pages freed a moment ago whatever row ran before it.

Rounds (``--repeat``, 3 by default) run the rdv rows in alternating order, and each row
prints the median of its rounds with their spread (``bench/_transfer_table.py`` says
why), and, per side, the share of the wall spent on a CPU, waiting for one (other load)
and asleep (waiting for the peer or the socket): a row that waited for CPUs measured the
machine, not rdv. A line per rdv row then splits each side's CPU into user and system
seconds per GiB (``getrusage``) and counts its sleeps (voluntary context switches): extra
cost in system time is the kernel's (socket copies), not Python's (issue 14).

Usage: ``python bench/transfer.py [--size 1G] [--chunk 256K] [--no-wormhole]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing as mp
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _transfer_support import (
    GiB,
    Result,
    bench_small_files,
    bench_wormhole,
    make_small_files,
    make_source,
    warm_pages,
)
from _transfer_table import print_table, sched_now, sched_since

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUF = 1 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


# ----- raw TCP


def _raw_recv(port_q: Any, out_q: Any) -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    port_q.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    cpu0 = time.process_time()
    buf = memoryview(bytearray(BUF))
    got = 0
    while n := conn.recv_into(buf):
        got += n
    end = time.monotonic()
    out_q.put(("recv", time.process_time() - cpu0, end, got))
    conn.close()


def _raw_send(port: int, size: int, out_q: Any) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytes(os.urandom(BUF))
    cpu0 = time.process_time()
    start = time.monotonic()
    left = size
    while left:
        piece = buf if left >= BUF else buf[:left]
        sock.sendall(piece)
        left -= len(piece)
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)  # the receiver closes after EOF: everything arrived
    out_q.put(("send", time.process_time() - cpu0, start, size))
    sock.close()


def bench_raw(ctx: Any, size: int) -> Result:
    port_q, out_q = ctx.Queue(), ctx.Queue()
    recv = ctx.Process(target=_raw_recv, args=(port_q, out_q))
    recv.start()
    send = ctx.Process(target=_raw_send, args=(port_q.get(), size, out_q))
    send.start()
    got = dict((r[0], r[1:]) for r in (out_q.get(), out_q.get()))
    send.join()
    recv.join()
    assert got["recv"][2] == size, "raw receiver got a short stream"
    wall = got["recv"][1] - got["send"][1]
    return Result("raw tcp", wall, got["recv"][0] + got["send"][0], size)


# ----- rdv


def server_loop_factory(loop: str) -> Any:
    """The event loop ``rdv serve --loop LOOP`` runs: ``auto`` is uvloop when installed."""
    if loop == "asyncio":
        return None
    try:
        return importlib.import_module("uvloop").new_event_loop
    except ImportError:
        if loop == "uvloop":
            raise
        return None


def _rdv_server(
    url_q: Any,
    stop: Any,
    out_q: Any,
    splice: bool | None = None,
    loop: str = "auto",
    threads: str = "auto",
) -> None:
    from rdv_core.server import RdvServer, start_native
    from rdv_core.server._splice_thread import THREADS_ENV

    if threads != "auto":  # read when the server makes its pipe pool
        os.environ[THREADS_ENV] = "1" if threads == "on" else "0"

    async def main() -> None:
        server = RdvServer(splice=splice)
        front = await start_native(server, host="127.0.0.1", port=0)
        cpu0 = time.process_time()
        sched0 = sched_now()
        url_q.put(front.url)
        # ``stop`` is a multiprocessing event: wait for it in a thread, off the loop.
        await asyncio.to_thread(stop.wait)
        out_q.put(("server", time.process_time() - cpu0, sched_since(sched0, 0.0), 0))
        await front.close()
        await server.close()

    with asyncio.Runner(loop_factory=server_loop_factory(loop)) as runner:
        runner.run(main())


def _rdv_peer(
    role: str, url: str, code: str, path: str, spaces: int, chunk: int, out_q: Any, workers: str
) -> None:
    from rdv_core.client import Client
    from rdv_core.session import IncomingOffer, _pipeline, connect_session
    from rdv_core.wire import AddrSpace

    if workers != "auto":  # big files' worker threads (docs/PROTOCOL.md 12.12)
        _pipeline.WORKERS = workers == "on"

    async def accept(offer: IncomingOffer) -> bool:
        return True

    async def main() -> None:
        t0 = time.monotonic()
        session = await connect_session(
            url,
            code,
            role,  # type: ignore[arg-type]
            client=Client(spaces=AddrSpace(spaces), timeout=30),
            on_offer=accept,
            download_dir=Path(path) if role == "receive" else None,
            chunk_size=chunk,
        )
        setup = time.monotonic() - t0
        cpu0 = time.process_time()
        use0 = resource.getrusage(resource.RUSAGE_SELF)
        sched0 = sched_now()
        start = time.monotonic()
        if role == "send":
            results = await session.send_paths([Path(path)])
            end = time.monotonic()
            assert all(r.ok for r in results)
            await session.close()
        else:
            await session.wait_closed()
            end = time.monotonic()
            assert session.received and all(r.ok for r in session.received), session.received
        sched = sched_since(sched0, end - start)
        relay = session.is_relay
        if session.conn is not None:
            await session.conn.close()
        cpu = time.process_time() - cpu0
        use = resource.getrusage(resource.RUSAGE_SELF)
        detail = (
            use.ru_utime - use0.ru_utime,
            use.ru_stime - use0.ru_stime,
            use.ru_nvcsw - use0.ru_nvcsw,  # sleeps: the loop (or a worker) waiting
        )
        out_q.put((role, cpu, start if role == "send" else end, setup, relay, sched, detail))

    asyncio.run(main())


def bench_rdv(
    ctx: Any,
    src: Path,
    dst: Path,
    size: int,
    relay: bool,
    chunk: int,
    workers: str = "auto",
    copy_relay: bool = False,
    loop: str = "auto",
    threads: str = "auto",
) -> Result:
    from rdv_core.wire import AddrSpace

    spaces = int(AddrSpace.NONE if relay else AddrSpace.LOOPBACK4)
    url_q, out_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    splice = False if copy_relay else None  # None: what ``rdv serve`` does
    server = ctx.Process(target=_rdv_server, args=(url_q, stop, out_q, splice, loop, threads))
    server.start()
    url = url_q.get()
    code = "101-bench-mark"
    peers = [
        ctx.Process(
            target=_rdv_peer, args=("receive", url, code, str(dst), spaces, chunk, out_q, workers)
        ),
        ctx.Process(
            target=_rdv_peer, args=("send", url, code, str(src), spaces, chunk, out_q, workers)
        ),
    ]
    for p in peers:
        p.start()
    got = {r[0]: r[1:] for r in (out_q.get(), out_q.get())}
    for p in peers:
        p.join()
    stop.set()
    server_cpu = out_q.get()[1]
    server.join()
    (send_cpu, start, setup, is_relay, send_sched, send_detail) = got["send"]
    (recv_cpu, end, _, _, recv_sched, recv_detail) = got["receive"]
    assert is_relay == relay
    name = ("rdv relay" if relay else "rdv p2p") + ("" if workers == "auto" else f" w-{workers}")
    name += " copy" if copy_relay else ""
    name += "" if loop == "auto" else f" {loop}"
    name += "" if threads == "auto" else f" t-{threads}"
    note = f"setup {setup:.2f} s"
    received = dst / src.name
    assert received.stat().st_size == size
    received.unlink()
    result = Result(name, end - start, send_cpu + recv_cpu + server_cpu, size, note)
    result.sides = (send_cpu, recv_cpu)
    result.sched = (send_sched, recv_sched)
    result.detail = (send_detail, recv_detail)
    result.server_cpu = server_cpu if relay else None
    return result


def small_files_round(ctx: Any, work: Path, files: int, round_: int) -> list[Any]:
    """``files`` small files through ``rdv send``/``rdv receive`` and through a tar pipe."""
    src = work / "small" / "tree"
    if not src.exists():
        make_small_files(src, files)
    url_q, out_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_rdv_server, args=(url_q, stop, out_q))
    server.start()
    try:
        tree = Path(__file__).resolve().parent.parent
        return bench_small_files(url_q.get(), src, work / "small-out", tree, round_)
    finally:
        stop.set()
        out_q.get()
        server.join()


# ----- where the CPU goes


def component_costs(src: Path, dst: Path, chunk: int) -> dict[str, float]:
    """CPU seconds per GiB of each step of the data path, measured in this process."""
    import hashlib

    from blake3 import blake3
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    size = min(src.stat().st_size, 256 << 20)
    data = bytearray(chunk)
    view = memoryview(data)
    out = bytearray(chunk + 16)
    aead = AESGCM(bytes(32))
    nonce = bytes(12)
    rounds = max(1, size // chunk)
    costs: dict[str, float] = {}

    def timed(name: str, step: Any) -> None:
        t0 = time.process_time()
        step()
        costs[name] = (time.process_time() - t0) / (rounds * chunk / GiB)

    def read_file() -> None:
        with open(src, "rb", buffering=0) as f:
            for _ in range(rounds):
                f.readinto(view)

    def write_file() -> None:
        fd = os.open(dst / "cost.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        for _ in range(rounds):
            os.write(fd, view)
        os.close(fd)

    def digest() -> None:
        h = blake3()
        for _ in range(rounds):
            h.update(view)

    def sha256() -> None:  # what session version 1 used, for comparison
        h = hashlib.sha256()
        for _ in range(rounds):
            h.update(view)

    def seal() -> None:
        for _ in range(rounds):
            aead.encrypt_into(nonce, view, None, out)

    sealed = aead.encrypt(nonce, bytes(view), None)

    def open_() -> None:
        for _ in range(rounds):
            aead.decrypt_into(nonce, sealed, None, data)

    timed("file read", read_file)
    timed("blake3", digest)
    timed("aes-gcm seal", seal)
    timed("aes-gcm open", open_)
    timed("file write", write_file)
    timed("(sha256)", sha256)
    (dst / "cost.bin").unlink()
    # The same write into pages the guest freed seconds ago: a VM whose balloon reports
    # free pages (virtio-balloon free page reporting, the project machine's) hands them
    # back to the host, which faults each one in again on the next write (3 s idle: no
    # effect yet, 10 s: 3x the write). A receiver writes a fresh file into such pages;
    # the write above reuses the warm pages of cost.bin's first run. Shown beside the
    # floor, not in it (docs/notes/issue-14-receiver.md).
    time.sleep(10)
    timed("(file write, fresh pages)", write_file)
    (dst / "cost.bin").unlink()
    return costs


# ----- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="file size, e.g. 1G, 256M (default 1G)")
    parser.add_argument("--chunk", default="256K", help="rdv data frame payload (default 256K)")
    parser.add_argument("--no-wormhole", action="store_true", help="skip magic-wormhole")
    parser.add_argument("--no-relay", action="store_true", help="skip rdv through the relay")
    parser.add_argument(
        "--relay-copy",
        action="store_true",
        help="also run the relay on the copy relay (the fallback of splice), same rounds",
    )
    parser.add_argument(
        "--relay-loop",
        action="append",
        choices=["asyncio", "uvloop"],
        default=[],
        help="also run the relay with the server on this loop (repeatable; the relay row "
        "runs what rdv serve runs: uvloop when installed)",
    )
    parser.add_argument(
        "--relay-threads",
        action="append",
        choices=["on", "off"],
        default=[],
        help="also run the relay with its threads for bulk flows forced on/off "
        "(repeatable; off is the loop-driven splice, RDV_RELAY_THREADS=0)",
    )
    parser.add_argument(
        "--workers",
        action="append",
        choices=["on", "off"],
        default=[],
        help="also run rdv p2p with big files' worker threads forced on/off (repeatable)",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=100_000,
        help="small files (1-4 KiB) through rdv send/receive and a tar pipe (0 skips)",
    )
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds (alternated); each row's median is shown"
    )
    args = parser.parse_args()
    size, chunk = parse_size(args.size), parse_size(args.chunk)
    ctx = mp.get_context("spawn")
    work = Path(tempfile.mkdtemp(prefix="rdv-bench-", dir=args.dir))
    try:
        src, dst = work / "payload.bin", work / "dst"
        dst.mkdir()
        make_source(src, size)
        print(f"file: {size / GiB:.3f} GiB, chunk {chunk // 1024} KiB, cpus {os.cpu_count()}")
        loop = "uvloop" if server_loop_factory("auto") else "asyncio"
        print(f"server loop: {loop} (what rdv serve runs)")
        print(f"load average at the start: {os.getloadavg()}", flush=True)
        runs: list[list[Result]] = []
        small: list[Any] = []
        for n in range(args.repeat):
            # Interleaved rounds: a busy neighbour on a shared machine hurts every variant.
            round_ = [bench_raw(ctx, size)]
            rows = [(False, "auto", False, "auto", "auto")]
            if not args.no_relay:
                rows.append((True, "auto", False, "auto", "auto"))
                if args.relay_copy:
                    rows.append((True, "auto", True, "auto", "auto"))
                rows += [(True, "auto", False, loop, "auto") for loop in args.relay_loop]
                rows += [(True, "auto", False, "auto", t) for t in args.relay_threads]
            rows += [(False, workers, False, "auto", "auto") for workers in args.workers]
            # Alternated: every other round runs the rdv rows in the opposite order, so no
            # row always runs first (or right after raw tcp, or after a given row).
            for relay, workers, copy, loop, threads in rows if n % 2 == 0 else rows[::-1]:
                # Every row that writes the file starts from the same page state.
                warm_pages(dst, size)
                round_.append(
                    bench_rdv(ctx, src, dst, size, relay, chunk, workers, copy, loop, threads)
                )
            if not args.no_wormhole:
                for direct in (True, False):
                    warm_pages(dst, size)
                    try:
                        round_.append(bench_wormhole(src, dst, size, direct))
                    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                        print(f"wormhole {'p2p' if direct else 'relay'}: not measured: {exc}")
            runs.append(round_)
            print(
                f"round {n + 1} (load {os.getloadavg()[0]:.2f} at its end): "
                + ", ".join(f"{r.name} {r.gib_s:.2f}" for r in round_),
                flush=True,
            )
            if args.files:
                print(f"uptime before the small files: {os.getloadavg()}", flush=True)
                small += small_files_round(ctx, work, args.files, len(runs))
        costs = component_costs(src, dst, chunk)
        raw_cpu = statistics.median(r.cpu_per_gib for r in (rs[0] for rs in runs))
        print(
            "CPU s/GiB of the steps, in this process: "
            + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
        )
        crypto = 2 * costs["blake3"] + costs["aes-gcm seal"] + costs["aes-gcm open"]
        floor = crypto + costs["file read"] + costs["file write"] + raw_cpu
        cpus = os.cpu_count() or 1
        ceiling = cpus / floor
        raw_gib_s = statistics.median(rs[0].gib_s for rs in runs)
        print(
            f"floor for rdv (raw tcp + 2x blake3 + seal + open + file read + write): "
            f"{floor:.2f} CPU s/GiB, so at most {ceiling:.2f} GiB/s on {cpus} idle cores "
            f"= {ceiling / raw_gib_s:.2f}x this run's raw tcp "
            f"(in-cache step costs: a lower bound for the floor)"
        )
        fresh = costs["(file write, fresh pages)"] - costs["file write"]
        print(
            f"with the file write into pages fresh from the host (+{fresh:.2f}): floor "
            f"{floor + fresh:.2f} CPU s/GiB, at most {cpus / (floor + fresh):.2f} GiB/s "
            f"(for information: x floor above uses the floor)"
        )
        print_table(runs, ceiling)
        print(f"load average at the end: {os.getloadavg()}")
        if small:
            best_small: dict[str, Any] = {}
            for run in small:
                if run.name not in best_small or run.wall_s < best_small[run.name].wall_s:
                    best_small[run.name] = run
            tar = best_small["tar pipe"]
            print(f"{args.files} files of 1-4 KiB (whole commands, fastest of {args.repeat}):")
            for run in best_small.values():
                print(
                    f"  {run.name:10} {run.wall_s:7.2f} s  {run.wall_s / tar.wall_s:5.2f}x tar  "
                    f"{run.files / run.wall_s:8.0f} files/s  CPU {run.cpu_s:.2f} s (both sides)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
