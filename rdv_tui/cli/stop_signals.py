"""Which stop signals a command takes over, and what one does while the command ends.

Shared by ``rdv serve``, ``rdv tui`` and ``rdv demo``. A signal inherited as ignored
stays ignored: ``nohup rdv tui`` (or ``trap '' HUP``, or a shell that starts a script's
background job with SIGINT ignored) asked the process to outlive the terminal, and
POSIX keeps an ignored signal ignored across ``exec`` for that reason.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from types import FrameType

_late: list[int] = []
_held: set[signal.Signals] = set()


def not_ignored(*signals: signal.Signals) -> tuple[signal.Signals, ...]:
    """``signals`` without the ones this process inherited as ignored (``SIG_IGN``)."""
    return tuple(sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN)


def note_late(signals: Iterable[signal.Signals]) -> None:
    """From now on, only note ``signals``: for the last clean-up of a process that ends.

    Once the event loop let go of them, their default action killed the process during
    its last clean-up or while the interpreter shut down (exit -15, not 143). Blocked in
    this thread, they stay pending through the interpreter's shutdown, which resets the
    handlers; the handler catches those delivered to another thread meanwhile.
    :func:`late_exit` turns a noted or pending one into the exit code.
    """
    signals = tuple(signals)
    for sig in signals:
        signal.signal(sig, _note)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    _held.update(signals)


def _note(signum: int, _frame: FrameType | None) -> None:
    _late.append(signum)


def late_exit(code: int) -> int:
    """``code``, or 128 + the first signal noted since :func:`note_late` (README: 143
    SIGTERM); one that comes later stays blocked, and the process ends with ``code``."""
    pending = sorted(signal.sigpending() & _held)
    first = _late[:1] or pending[:1]
    return 128 + first[0] if first else code
