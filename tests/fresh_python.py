"""Run a check in a fresh interpreter, so that what the test session imported cannot hide it.

Import-time properties ("importing X does not load Y") only mean something in a process
that has imported nothing yet; the test session itself has imported half the world.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The repository root: the fresh interpreter runs there, so it imports this worktree's code.
ROOT = Path(__file__).resolve().parent.parent


def run_json(script: str) -> dict[str, Any]:
    """Run ``script`` with ``python -c`` in :data:`ROOT`; its last stdout line is JSON.

    Any exception in ``script``, a module that does not exist included, fails the calling
    test with the interpreter's traceback: a check that cannot run is not a pass.
    """
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
