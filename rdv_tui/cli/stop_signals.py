"""Which stop signals a command takes over, and what one does while the command ends.

Shared by ``rdv serve``, ``rdv tui``, ``rdv demo``, ``rdv send``/``receive`` and
pipe mode (rdv_tui/transfer_stop.py). A signal inherited as ignored
stays ignored: ``nohup rdv tui`` (or ``trap '' HUP``, or a shell that starts a script's
background job with SIGINT ignored) asked the process to outlive the terminal, and
POSIX keeps an ignored signal ignored across ``exec`` for that reason.

The app takes its signals once, before it starts (:func:`take`), with a Python-level
handler that stays for the rest of the process: noted before the app mounted, told
to the app while it runs (:func:`on_stop`), only noted while it ends
(:func:`note_late`). asyncio's ``loop.add_signal_handler`` served the app before:
``loop.remove_signal_handler`` resets a signal to its default action, and one that
landed before the late handler was set killed the app (exit -15, the demo's folder
left behind: 1 run in 40 under a SIGTERM every 2 ms); none was set before the app
mounted (a SIGTERM then left the terminal in the app's alternate screen, exit -15).
"""

from __future__ import annotations

import atexit
import signal
from collections.abc import Callable, Iterable
from types import FrameType

StopCallback = Callable[[signal.Signals], None]

_late: list[int] = []
"""The first signal the handler noted (only the first: a burst of them costs nothing)."""
_held: set[signal.Signals] = set()
"""The signals :func:`note_late` blocked in this thread."""
_ignore_registered = False
"""Whether :func:`ignore_held` registered its ``atexit`` callback (once per process)."""
_taken: set[signal.Signals] = set()
_told: list[StopCallback] = []
"""Whom the next taken signal is told to (at most one; emptied when told, but with
``every``)."""
_every: list[bool] = [False]


def not_ignored(*signals: signal.Signals) -> tuple[signal.Signals, ...]:
    """``signals`` without the ones this process inherited as ignored (``SIG_IGN``)."""
    return tuple(sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN)


def take(
    signals: Iterable[signal.Signals], *, even_ignored: Iterable[signal.Signals] = ()
) -> tuple[signal.Signals, ...]:
    """Take ``signals`` over for the rest of the process, but the ones inherited as
    ignored (``nohup``: README, the app); return the ones taken (again: the same).

    From the main thread. Each one is noted (:func:`late_exit`), and told to whoever
    :func:`on_stop` named. The handler is never reset to the default action, so there
    is no moment where a signal kills the process instead (that moment ended the
    app with exit -15). ``even_ignored``: these are taken even so (``rdv serve``'s
    SIGTERM: a supervisor's stop must work).
    """
    signals = tuple(signals)
    forced = set(even_ignored)
    wanted = [sig for sig in signals if sig not in _taken]
    for sig in (*not_ignored(*wanted), *(sig for sig in wanted if sig in forced)):
        signal.signal(sig, _note)
        _taken.add(sig)
    return tuple(sig for sig in signals if sig in _taken)


def on_stop(callback: StopCallback | None, *, every: bool = False) -> signal.Signals | None:
    """Tell the next taken signal to ``callback`` (once; ``every``: each one, as
    ``rdv serve`` wants: a second one cuts its drain short), or to nobody (None).

    Returns the first signal noted before, if any: one that came while the app started
    (the caller stops at once; ``callback`` is not called for it).
    """
    _told.clear()
    _every[0] = every
    if callback is not None:
        _told.append(callback)
    return signal.Signals(_late[0]) if _late else None


def note_late(signals: Iterable[signal.Signals]) -> None:
    """From now on, only note ``signals``: for the last clean-up of a process that ends.

    Blocked in this thread, they stay pending through the interpreter's shutdown, which
    resets the handlers; the handler catches those delivered to another thread
    meanwhile. :func:`late_exit` turns a noted or pending one into the exit code.
    """
    signals = tuple(signals)
    on_stop(None)
    for sig in signals:
        if sig not in _taken:
            signal.signal(sig, _note)
            _taken.add(sig)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    _held.update(signals)


def _note(signum: int, _frame: FrameType | None) -> None:
    # A Python-level handler: it runs in the main thread between two bytecodes, so the
    # callback must only schedule (the app's: ``loop.call_soon_threadsafe``).
    if not _late:
        _late.append(signum)
    if _told:
        (_told[0] if _every[0] else _told.pop())(signal.Signals(signum))


def late_exit(code: int) -> int:
    """``code``, or 128 + the first signal noted since :func:`take` or :func:`note_late`
    (README: 143 SIGTERM); one that comes later stays blocked, and the process ends with
    ``code``."""
    pending = sorted(signal.sigpending() & _held)
    first = _late[:1] or pending[:1]
    return 128 + first[0] if first else code


def last_exit(code: int) -> int:
    """:func:`late_exit`, the last thing a command does: from now on the signals held by
    :func:`note_late` are ignored.

    The interpreter's shutdown resets every Python-level handler to the default action,
    and a thread it does not wait for (Textual's daemon writer thread) still takes them:
    a SIGTERM that landed then killed the app after its clean-up (exit -15, 2 runs in
    40 of a burst while it started). Ignored, such a late one changes nothing.
    """
    code = late_exit(code)
    ignore_held()
    return code


def ignore_held() -> None:
    """The signals held by :func:`note_late` are ignored from the interpreter's exit on (see
    :func:`last_exit`), for a command whose exit code a signal does not change (``rdv
    serve``: 0 after the graceful shutdown a stop signal asked for).

    At exit (``atexit`` runs before the interpreter resets its handlers, and a handler set
    to ``SIG_IGN`` is left so), not now: until then the Python-level handler only notes a
    late signal, and a ``main()`` called inside a longer-lived process (the suite calls
    ``rdv_tui.cli.main([...])`` in its workers) left SIGTERM ignored there, which every
    process started afterwards inherited across ``exec`` (the fresh-clone CI: 34 signal
    tests failed, their commands ignoring the SIGTERM the test sent).
    """
    global _ignore_registered
    if not _ignore_registered:
        _ignore_registered = True
        atexit.register(_ignore_now)
    # No longer blocked either (:func:`note_late` blocked them in this thread so that they
    # stayed pending through the shutdown; the ``atexit`` ignore now covers that): a mask
    # left in place was inherited by every process the caller started afterwards, which
    # then never saw a SIGTERM. One pending now is only noted by the handler.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _held)


def _ignore_now() -> None:
    for sig in _held:
        signal.signal(sig, signal.SIG_IGN)
