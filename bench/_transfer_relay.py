"""The relay alone: server CPU s/GiB of its paths, alternated in the same run.

Two raw TCP peers (threads of this process, blocking ``sendall`` / ``recv_into`` of
1 MiB, no crypto) pair through a real ``RdvServer`` in a child process and move
``--size`` bytes one way; the server's CPU (user and system, all its threads) is taken
over the transfer. Rows: ``loop`` (``RDV_RELAY_THREADS=0``: the loop-driven splice of
``rdv_core.server._splice``), ``threads`` (bulk flows moved by relay threads,
``rdv_core.server._splice_thread``) and, with ``--copy``, the copy relay. Cheap peers
leave the server's own cost per byte visible on a loaded machine, which the whole
transfer of ``bench/transfer.py`` hides behind its peers' CPU.

Usage: ``python bench/_transfer_relay.py [--size 1G] [--repeat 3] [--copy]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import threading
import time
from typing import Any

GiB = 1 << 30
BLOCK = 1 << 20


def _server(url_q: Any, stop: Any, cmd_q: Any, out_q: Any, mode: str) -> None:
    if mode != "copy":
        os.environ["RDV_RELAY_THREADS"] = "1" if mode == "threads" else "0"
    from rdv_core.server import RdvServer, start_native

    async def main() -> None:
        server = RdvServer(splice=mode != "copy")
        front = await start_native(server, host="127.0.0.1", port=0)
        url_q.put(front.port)
        await asyncio.to_thread(stop.wait)  # set by the parent once it measured
        await front.close()
        await server.close()

    def measure() -> None:
        while True:
            cmd = cmd_q.get()
            if cmd == "now":
                t = os.times()
                out_q.put((t.user, t.system))
            else:
                return

    threading.Thread(target=measure, daemon=True).start()
    with asyncio.Runner() as runner:
        runner.run(main())


def _request(port: int, method: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"{method} /bench-relay HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\n"
        "Rdv-Self-Addrs: \r\nUpgrade: rdv/1\r\n\r\n".encode()
    )
    return sock


def _read_head(sock: socket.socket) -> None:
    got = b""
    while b"\r\n\r\n" not in got:
        piece = sock.recv(1)
        assert piece, "the server closed before its 101"
        got += piece
    assert got.startswith(b"HTTP/1.1 101"), got


def one(ctx: Any, mode: str, size: int) -> tuple[float, float, float]:
    """(wall s, server user s, server system s) for ``size`` bytes D -> A."""
    url_q, cmd_q, out_q, stop = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_server, args=(url_q, stop, cmd_q, out_q, mode))
    proc.start()
    port = url_q.get()
    accepter = _request(port, "ACCEPT")
    time.sleep(0.2)  # in the lobby first
    dialer = _request(port, "DIAL")
    _read_head(dialer)
    _read_head(accepter)
    dialer.sendall(b"CONTINUE\n")
    assert accepter.recv(9, socket.MSG_WAITALL) == b"CONTINUE\n"
    cmd_q.put("now")
    user0, sys0 = out_q.get()
    t0 = time.monotonic()
    block = os.urandom(BLOCK)

    def send() -> None:
        sent = 0
        while sent < size:
            dialer.sendall(block)
            sent += BLOCK
        dialer.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    buf, got = bytearray(BLOCK), 0
    while n := accepter.recv_into(buf):
        got += n
    sender.join()
    wall = time.monotonic() - t0
    cmd_q.put("now")
    user1, sys1 = out_q.get()
    cmd_q.put("end")
    assert got == size, (got, size)
    dialer.close()
    accepter.close()
    stop.set()
    proc.join()
    return wall, user1 - user0, sys1 - sys0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1G", help="bytes per transfer: 1G, 256M")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (alternated)")
    parser.add_argument("--copy", action="store_true", help="also the copy relay")
    args = parser.parse_args()
    unit = {"G": GiB, "M": 1 << 20}
    size = int(args.size[:-1]) * unit[args.size[-1]] if args.size[-1] in unit else int(args.size)
    modes = ["loop", "threads"] + (["copy"] if args.copy else [])
    ctx = mp.get_context("spawn")
    res: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    for n in range(args.repeat):
        for mode in modes if n % 2 == 0 else modes[::-1]:
            res[mode].append(one(ctx, mode, size))
        line = ", ".join(
            f"{m} {size / GiB / res[m][-1][0]:.2f} GiB/s "
            f"{(res[m][-1][1] + res[m][-1][2]) * GiB / size:.3f} s/GiB"
            for m in modes
        )
        print(f"round {n + 1} (load {os.getloadavg()[0]:.2f}): {line}", flush=True)
    print(f"{'':8} {'GiB/s':>6} {'server CPU s/GiB':>17} {'user':>6} {'system':>7}")
    for m in modes:
        g = size / GiB
        print(
            f"{m:8} {statistics.median(g / r[0] for r in res[m]):6.2f} "
            f"{statistics.median((r[1] + r[2]) / g for r in res[m]):17.3f} "
            f"{statistics.median(r[1] / g for r in res[m]):6.3f} "
            f"{statistics.median(r[2] / g for r in res[m]):7.3f}"
        )
    ratios = [
        (t[1] + t[2]) / (lp[1] + lp[2]) for t, lp in zip(res["threads"], res["loop"], strict=True)
    ]
    print(f"threads / loop server CPU, same round: median {statistics.median(ratios):.2f}")
    print(f"load average at the end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
