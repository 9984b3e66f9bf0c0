"""The README's Python examples run as written (issue 9: "each example in it runs").

Each example runs in a fresh network namespace holding only ``lo`` (``unshare --net``), so
it can keep the README's defaults (every address space, port 8080) and still send nothing
beyond this test. The work is in ``tests/readme_examples.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("readme_examples.py")
REPO = DRIVER.parent.parent


def _netns_prefix() -> list[str]:
    """``unshare`` arguments that give a private network namespace, or skip."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    prefix = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "-r", "--net"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    return prefix


@pytest.mark.parametrize("name", ["peer", "transfer", "aiohttp", "server"])
def test_readme_example_runs(name: str) -> None:
    script = 'ip link set lo up && exec "$@"'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    result = subprocess.run(
        [*_netns_prefix(), "sh", "-c", script, "sh", sys.executable, str(DRIVER), name],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"README example {name}: ok" in result.stdout
