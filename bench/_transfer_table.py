"""bench/transfer.py's big-file table: every round's rows, summarized as median and spread.

Why medians and not the fastest round: on the project machine (2 vCPUs shared with other
work, a balloon that takes free memory back on a ~2 s clock: docs/LAB-NOTES.md 10.3) one
round of one row swings by 2x, and the fastest of N rounds picks whichever row was lucky,
so two rows' fastest rounds are not comparable. The median of rounds that ran alternated
(each round runs the rdv rows in the opposite order of the round before) is, with its
spread beside it, what a reader can trust; ``relay / p2p`` is the median of the ratios of
rows that ran in the same round, a minute apart, not a ratio of two unrelated bests.

Each rdv row also says where each side's wall time went, from ``/proc/self/schedstat``:
on a CPU, runnable but waiting for one (the machine's other load, or the peer on the same
core), and asleep (waiting for the peer, the socket or the disk). A side asleep for half
the transfer is a stall of the pipeline; a side waiting for a CPU is the machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30
_Detail = tuple[tuple[float, float, int], tuple[float, float, int]]


@dataclass
class Result:
    name: str
    wall_s: float
    cpu_s: float
    size: int
    note: str = ""
    #: CPU seconds of the sender and the receiver, where measured apart.
    sides: tuple[float, float] | None = None
    #: Per side (sender, receiver): seconds on a CPU, runnable but waiting for one, and
    #: the side's own wall window, from /proc/self/schedstat (None where not measured).
    sched: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    #: Per side (sender, receiver): user and system CPU seconds and voluntary context
    #: switches (each a sleep of a thread: the loop waiting for the socket, a worker
    #: waiting for work), from getrusage (None where not measured).
    detail: _Detail | None = None
    #: CPU seconds of the server (relay rows).
    server_cpu: float | None = None

    @property
    def gib_s(self) -> float:
        return self.size / GiB / self.wall_s

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_s / (self.size / GiB)


def sched_now() -> tuple[float, float]:
    """Seconds this process has run on a CPU and waited (runnable) for one, Linux only."""
    try:
        run, wait, _ = Path("/proc/self/schedstat").read_text().split()
    except (OSError, ValueError):
        return (0.0, 0.0)
    return int(run) / 1e9, int(wait) / 1e9


def sched_since(before: tuple[float, float], wall_s: float) -> tuple[float, float, float]:
    """(on cpu, waiting for a cpu, wall) over a window that began at ``before``."""
    run, wait = sched_now()
    return run - before[0], wait - before[1], wall_s


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else ""


def _detail(details: list[tuple[_Detail, float]], side: int) -> str:
    """One side's medians per GiB: user and system CPU seconds, and sleeps."""
    user = _median([d[side][0] / g for d, g in details])
    system = _median([d[side][1] / g for d, g in details])
    sleeps = _median([d[side][2] / g for d, g in details])
    who = ("sender", "receiver")[side]
    return f"{who} user {user:.2f} s, sys {system:.2f} s, {sleeps:.0f} sleeps"


def _where(results: list[Result], side: int) -> str:
    """``cpu/runq/asleep`` shares of one side's wall, medians over the rounds."""
    shares = [
        (run / wall, wait / wall, max(0.0, 1 - (run + wait) / wall))
        for r in results
        if r.sched is not None
        for run, wait, wall in (r.sched[side],)
        if wall > 0
    ]
    if not shares:
        return ""
    return "/".join(f"{_median([s[i] for s in shares]):.2f}" for i in range(3))


def print_table(
    runs: list[list[Result]], floor_ceiling: float, emit: Callable[[str], None] = print
) -> dict[str, list[Result]]:
    """Print one line per variant (medians over rounds, spread of GiB/s) and the ratios."""
    by_name: dict[str, list[Result]] = {}
    for round_ in runs:
        for r in round_:
            by_name.setdefault(r.name, []).append(r)
    rate = {name: _median([r.gib_s for r in rs]) for name, rs in by_name.items()}
    raw = rate.get("raw tcp")
    emit(
        f"medians of {len(runs)} round(s); spread = slowest-fastest GiB/s; where = "
        "each side's wall on a cpu / waiting for a cpu / asleep (sender, receiver)"
    )
    emit(
        f"{'':16} {'GiB/s':>6} {'spread':>10} {'x raw':>6} {'x floor':>8} {'x wormhole':>11} "
        f"{'CPU s/GiB':>10} {'sender':>7} {'receiver':>9} {'server':>7}  "
        f"{'where: sender':>14} {'receiver':>14}"
    )
    for name, results in by_name.items():
        kind = "relay" if " relay" in name else name.split()[-1]
        theirs = rate.get(f"wormhole {kind}") or rate.get("wormhole p2p")
        gib = [r.size / GiB for r in results]
        sides = [r.sides for r in results]
        cols = (
            f"{_median([s[0] / g for s, g in zip(sides, gib, strict=True) if s]):7.2f} "
            f"{_median([s[1] / g for s, g in zip(sides, gib, strict=True) if s]):9.2f}"
            if all(sides)
            else f"{'':7} {'':9}"
        )
        servers = [r.server_cpu / g for r, g in zip(results, gib, strict=True) if r.server_cpu]
        emit(
            f"{name:16} {rate[name]:6.2f} {_spread([r.gib_s for r in results]):>10} "
            + (f"{rate[name] / raw:6.2f} " if raw else f"{'-':>6} ")
            + f"{rate[name] / floor_ceiling:8.2f} "
            + (f"{rate[name] / theirs:11.2f} " if theirs else f"{'-':>11} ")
            + f"{_median([r.cpu_per_gib for r in results]):10.2f} {cols} "
            + (f"{_median(servers):7.2f}" if servers else f"{'':7}")
            + f"  {_where(results, 0):>14} {_where(results, 1):>14}"
        )
    for name, results in by_name.items():
        details = [(r.detail, r.size / GiB) for r in results if r.detail]
        if details:
            emit(f"{name:16} per GiB: " + ";  ".join(_detail(details, side) for side in (0, 1)))
    if "wormhole p2p" not in rate:
        emit("x wormhole: not measured (--no-wormhole, or magic-wormhole not installed)")
    for relay in ("rdv relay", "rdv relay copy", "rdv relay t-on", "rdv relay t-off"):
        ratios = [
            rows[relay].gib_s / rows["rdv p2p"].gib_s
            for rows in ({r.name: r for r in round_} for round_ in runs)
            if relay in rows and "rdv p2p" in rows
        ]
        if ratios:
            emit(
                f"{relay} / rdv p2p, same round: median {_median(ratios):.2f}"
                + (f" (spread {_spread(ratios)}: " + ", ".join(f"{x:.2f}" for x in ratios) + ")")
            )
    return by_name
