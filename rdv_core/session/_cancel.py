"""Cancelling one transfer while the session goes on (docs/PROTOCOL.md section 12.14).

A user sending three files who picked the wrong one stops that one and keeps the
others; a receiver stops a file it does not want after all. No new frame: the side
that cancels sends the ``fail`` frame every peer knows (12.6 item 6: "``fail`` ends
one transfer and the session goes on") with the optional field ``"cancelled": true``.
An older rdv peer ignores the field (unknown JSON fields are ignored: 12.4) and shows
an ordinary failure whose reason reads ``cancelled``; a peer that knows the field
reports the file as cancelled by the peer, apart from the failures.

The rules that keep the peers in step are those of ``fail`` (12.6): a sender never
sends ``data`` or ``done`` for a transfer after its ``fail``, and a receiver drops the
data still in flight for a transfer it failed. What cannot be cancelled any more is
refused with a reason (:func:`too_late_to_send`; a receiver cancels only files it
accepted and holds no verdict for).
"""

from __future__ import annotations

from typing import Literal

from rdv_core.session import _frames as fr

#: The reason of a file this side cancelled.
CANCELLED = "cancelled"
#: The reason of a file the peer cancelled.
CANCELLED_BY_PEER = "cancelled by the peer"

#: Why a file cannot be cancelled: it has its verdict already (or never was ours).
ENDED = "it has already ended"
#: ... every byte of it left, the receiver is checking it: its verdict comes next.
ALL_SENT = "too late: all of it is sent and the receiver is checking it"


def fail_frame(transfer_id: int, side: Literal["sender", "receiver"]) -> fr.Fail:
    """The ``fail`` that cancels ``transfer_id`` (the peer reads ``cancelled``)."""
    return fr.Fail(transfer_id, side, CANCELLED, cancelled=True)


def too_late_to_send(*, known: bool, settled: bool, all_sent: bool) -> str | None:
    """Why a file being sent cannot be cancelled, or None when it can.

    ``all_sent``: its ``done`` left, or it went in a bundle (12.13): the receiver may
    have placed it already, and a ``fail`` now would only contradict its verdict.
    """
    if not known or settled:
        return ENDED
    return ALL_SENT if all_sent else None
