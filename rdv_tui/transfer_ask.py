"""The one question ``rdv receive`` asks ("Accept 3 file(s) ...? [y/N]"), read without
blocking the event loop. Imported only inside the command's ``run()`` (rich).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading

from rich.console import Console


async def ask(console: Console, prompt: str) -> str:
    """Read one answer from the terminal without blocking the event loop.

    A daemon thread, not the loop's executor: on Ctrl-C the process must not wait
    at exit for a thread stuck in ``input()``.

    Raises:
        EOFError: stdin closed.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(result: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or "")

    def read() -> None:
        result: str | None = None
        error: BaseException | None = None
        try:
            flush_typed_ahead()
            text = console.input(prompt)
        except (EOFError, KeyboardInterrupt, OSError) as exc:
            error = EOFError(str(exc))
        else:
            result = text
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, result, error)

    threading.Thread(target=read, name="rdv-ask", daemon=True).start()
    return await answer


def flush_typed_ahead() -> None:
    """Drop what was typed before the question was shown.

    Only an answer typed after the prompt may answer it: a line typed earlier (a chat
    reply, say, which this command cannot send) declined a 50 MB offer unseen (issue 16).
    """
    if not sys.stdin.isatty():
        return
    try:
        import termios

        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    except (ImportError, OSError, ValueError):  # not a POSIX terminal: nothing to drop
        pass
