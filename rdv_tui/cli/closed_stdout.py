"""A command whose output is stdout, started with stdout closed (``>&-``).

Python leaves ``sys.stdout`` None then, and ``print`` to None writes nothing: ``rdv
doctor >&-`` measured and printed no report, ``rdv serve --events -`` dropped every
event, both without a word. Such a command says so on stderr and exits 2 (bad usage)
before it does any work.
"""

from __future__ import annotations

import sys


def stdout_closed(command: str, what: str) -> bool:
    """True (said on stderr) if stdout is closed, where ``command`` would print ``what``."""
    if sys.stdout is not None:
        return False
    if sys.stderr is not None:
        print(
            f"{command}: stdout is closed: nowhere to print {what} (> /dev/null for none)",
            file=sys.stderr,
        )
    return True
