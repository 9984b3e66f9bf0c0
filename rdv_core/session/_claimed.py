"""The transfer ids a peer has offered in a session, kept as ranges so that they stay small.

docs/PROTOCOL.md 12.6: a transfer id is never reused in a session, so the receiver must
remember every id offered, the ones of rejected batches too. A set of ints cost about
80 bytes per id: a peer sending declined offers of 12,000 one-letter names, 200 times
(50 MB on the wire), grew the receiver by 200 MB and never gave it back. rdv numbers its
ids 1, 2, 3, ... across a session, which is one range here whatever the count; a peer
that scatters its ids over more than :data:`MAX_RANGES` ranges ends the session.

Batch numbers are kept the same way: 12.6 calls "a batch offered twice" a violation, and a
set of only the open batches let a peer reuse a batch number once its offer was answered.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from rdv_core.session._errors import ProtocolViolation

#: Separate runs of ids a peer may leave in one session (a few dozen bytes each).
MAX_RANGES = 4096


class ClaimedIds:
    """Disjoint, sorted half-open ranges ``[start, end)`` of the ids claimed so far."""

    __slots__ = ("_ends", "_starts", "_what")

    def __init__(self, what: str = "transfer id") -> None:
        #: What the numbers are, for the errors ("transfer id", "batch number").
        self._what = what
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        """How many ranges are held (the memory it costs), not how many ids."""
        return len(self._starts)

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, int):
            return False
        i = bisect.bisect_right(self._starts, id_) - 1
        return i >= 0 and id_ < self._ends[i]

    def claim(self, ids: Iterable[int]) -> None:
        """Claim all of ``ids`` at once, or none of them.

        Raises:
            ProtocolViolation: an id is doubled or was claimed before, or the ids would
                need more than :data:`MAX_RANGES` ranges.
        """
        ordered = sorted(ids)
        runs: list[tuple[int, int]] = []
        for id_ in ordered:
            if runs and id_ < runs[-1][1]:
                raise ProtocolViolation(f"offer reuses a {self._what}")
            if id_ in self:
                raise ProtocolViolation(f"offer reuses a {self._what}")
            if runs and id_ == runs[-1][1]:
                runs[-1] = (runs[-1][0], id_ + 1)
            else:
                runs.append((id_, id_ + 1))
        starts, ends = list(self._starts), list(self._ends)
        for start, end in runs:
            i = bisect.bisect_left(starts, start)
            # Merge with the range just before and the one just after, when they touch.
            if i > 0 and ends[i - 1] == start:
                i -= 1
                ends[i] = end
            else:
                starts.insert(i, start)
                ends.insert(i, end)
            if i + 1 < len(starts) and starts[i + 1] == end:
                ends[i] = ends[i + 1]
                del starts[i + 1], ends[i + 1]
            if len(starts) > MAX_RANGES:
                raise ProtocolViolation(
                    f"the peer scattered its {self._what}s over more than {MAX_RANGES} ranges"
                    " (rdv numbers them 1, 2, 3, ...), which would hold this side's memory"
                    " without bound: the session was ended, send again with an rdv peer"
                )
        self._starts, self._ends = starts, ends
