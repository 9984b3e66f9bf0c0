"""No namespace and no process outlives a lab: not after an exception, not after SIGKILL.

(The natlab conftest also checks, after every test, failing ones included, that no lab
namespace of this process and no child process is left.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from rdv_core.lab import Lab, get_preset
from rdv_core.lab import _netns as netns
from rdv_core.lab._isolate import ISOLATED_ENV, OWNER_ENV, can_isolate, isolated_argv

from tests.natlab.natlab_support import visible_lab_namespaces

SLEEPER = [sys.executable, "-c", "import time, sys; time.sleep(300)"]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_until(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read() and not _gone(int(entry)):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_failing_body_leaves_nothing() -> None:
    names: list[str] = []
    pid = 0
    with pytest.raises(RuntimeError, match="boom"), Lab(get_preset("cone-fw")) as lab:
        names = lab.namespaces
        pid = lab.spawn("cliA", SLEEPER).pid
        assert set(names) <= set(netns.list_lab_namespaces())
        raise RuntimeError("boom")
    assert names and not set(names) & set(netns.list_lab_namespaces())
    assert _gone(pid)


_HOLDER = """
import json, sys, time
from rdv_core.lab import Lab, get_preset
from rdv_core.lab import _isolate as isolate
if isolate.is_isolated():
    isolate.setup_inside()
lab = Lab(get_preset("cone-fw"), rdv_command=RDV_COMMAND).__enter__()
lab.start_server()
sleeper = lab.spawn("cliB", [sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
print(json.dumps({"namespaces": lab.namespaces, "sleeper": sleeper.pid}), flush=True)
time.sleep(300)
"""


def _holder(rdv_command: list[str]) -> str:
    """The holder script, starting rdv with ``rdv_command``."""
    return _HOLDER.replace("RDV_COMMAND", repr(rdv_command))


def _start_holder(
    argv: list[str], env: dict[str, str]
) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait()
        pytest.fail("the lab holder did not start")
    return proc, json.loads(line)


def test_sigkilled_runner_children_die_and_its_labs_are_removed_at_next_start(
    rdv_command: list[str],
) -> None:
    marker = f"rdvlab-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k not in (ISOLATED_ENV, OWNER_ENV)}
    proc: subprocess.Popen[str] | None = None
    try:
        proc, info = _start_holder([sys.executable, "-c", _holder(rdv_command), marker], env)
        names = list(info["namespaces"])  # type: ignore[call-overload]
        assert set(names) <= set(netns.list_lab_namespaces())
        assert _pids_with(marker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # PR_SET_PDEATHSIG: the lab's processes die with their runner.
        assert _wait_until(lambda: not _pids_with(marker)), "a lab process survived its runner"
        # The namespaces stay until the next lab starts, which removes them (owner pid dead).
        assert set(names) <= set(netns.list_lab_namespaces())
        with Lab(get_preset("same-lan")):
            assert not set(names) & set(netns.list_lab_namespaces())
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        # Whatever happened, leave no stale lab behind for the next test.
        netns.remove_stale(os.getpid())


def test_sigkilled_isolated_runner_leaves_nothing_at_all(rdv_command: list[str]) -> None:
    if not can_isolate():
        pytest.skip("unshare (util-linux) is not installed")
    marker = f"rdvlab-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k not in (ISOLATED_ENV, OWNER_ENV)}
    env[ISOLATED_ENV] = "1"
    before = visible_lab_namespaces()
    argv = isolated_argv([sys.executable, "-c", _holder(rdv_command), marker], rootless=False)
    proc, info = _start_holder(argv, env)
    try:
        assert info["namespaces"]
        # Private /run/netns: the lab is invisible from here.
        assert visible_lab_namespaces() == before, netns.list_lab_namespaces()
        assert _pids_with(marker), "the isolated lab's sleeper is not running"
        proc.send_signal(signal.SIGKILL)  # the unshare process: the runner as users see it
        proc.wait()
        assert _wait_until(lambda: not _pids_with(marker)), f"survivors: {_pids_with(marker)}"
        assert visible_lab_namespaces() == before, netns.list_lab_namespaces()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_server_that_will_not_start_is_a_clear_error_and_leaves_nothing() -> None:
    from rdv_core.lab._runner import run_preset

    # An "rdv" that exits at once with 7.
    exits = [sys.executable, "-c", "raise SystemExit(7)"]
    with pytest.raises(netns.LabError, match="rdv serve exited with 7"):
        run_preset(get_preset("cone-fw"), 1, rdv_command=exits)


_FAILING_TEST = """
import sys
from rdv_core.lab import Lab, get_preset

def test_fails_inside_a_lab():
    with Lab(get_preset("cone-fw"), rdv_command=RDV_COMMAND) as lab:
        lab.start_server()
        lab.spawn("cliA", [sys.executable, "-c", "import time; time.sleep(300)", "MARKER"])
        assert False, "this test fails on purpose"
"""


def test_a_failing_pytest_test_leaves_nothing(
    tmp_path: os.PathLike[str], rdv_command: list[str]
) -> None:
    marker = f"rdvlab-test-{uuid.uuid4().hex}"
    path = os.path.join(tmp_path, "test_inner.py")
    with open(path, "w") as f:
        f.write(_FAILING_TEST.replace("MARKER", marker).replace("RDV_COMMAND", repr(rdv_command)))
    before = visible_lab_namespaces()
    env = {k: v for k, v in os.environ.items() if k not in (ISOLATED_ENV, OWNER_ENV)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "this test fails on purpose" in proc.stdout
    assert visible_lab_namespaces() == before
    assert _wait_until(lambda: not _pids_with(marker)), f"survivors: {_pids_with(marker)}"
