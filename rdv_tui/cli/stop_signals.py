"""Which stop signals a command takes over.

Shared by ``rdv serve``, ``rdv tui`` and ``rdv demo``. A signal inherited as ignored
stays ignored: ``nohup rdv tui`` (or ``trap '' HUP``, or a shell that starts a script's
background job with SIGINT ignored) asked the process to outlive the terminal, and
POSIX keeps an ignored signal ignored across ``exec`` for that reason.
"""

from __future__ import annotations

import signal


def not_ignored(*signals: signal.Signals) -> tuple[signal.Signals, ...]:
    """``signals`` without the ones this process inherited as ignored (``SIG_IGN``)."""
    return tuple(sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN)
