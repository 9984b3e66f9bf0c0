"""Named network namespaces: enter, run in, find, kill and delete.

Lab namespaces are named ``rdvlab-<owner pid>x<lab number>-<role>`` so that namespaces left
behind by a runner that was SIGKILLed can be recognised (their owner pid is dead) and removed
at the next start, processes first (a namespace lives on while a process sits in it).

Entering a namespace never touches the calling thread: sockets and sysctl writes go through a
short-lived thread that ``setns`` itself (Python 3.11 has no ``os.setns``, hence ctypes), and
child processes ``setns`` in ``preexec_fn`` between fork and exec. A socket stays in the
namespace it was made in, whichever thread later uses it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from rdv_core.errors import RdvError

log = logging.getLogger("rdv.lab")

NETNS_DIR: Final = "/run/netns"
LAB_PREFIX: Final = "rdvlab-"
_NAME_RE: Final = re.compile(r"^rdvlab-(\d+)x(\d+)-([A-Za-z0-9]+)$")
_WORKDIR_RE: Final = re.compile(r"^rdvlab-(\d+)x(\d+)-w")

_CLONE_NEWNET: Final = 0x40000000
_PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")


class LabError(RdvError, RuntimeError):
    """Building, running or tearing down a lab failed; the message says which command and why."""


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def setns_fd(fd: int) -> None:
    """Move the *calling thread* into the network namespace open as ``fd``."""
    if _c().setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def lab_ns_name(owner_pid: int, number: int, role: str) -> str:
    """The namespace name of ``role`` in lab ``number`` of process ``owner_pid``."""
    return f"{LAB_PREFIX}{owner_pid}x{number}-{role}"


def parse_lab_ns_name(name: str) -> tuple[int, int, str] | None:
    """``(owner pid, lab number, role)`` of a lab namespace name, or None for other names."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3)


def ns_path(name: str) -> str:
    """The bind-mount path of a named namespace."""
    return os.path.join(NETNS_DIR, name)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a fresh thread that entered namespace ``name``; return its result.

    The thread ends right after, so no other code ever runs in the wrong namespace.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(ns_path(name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns_fd(fd)
            finally:
                os.close(fd)
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def _preexec(fd: int, die_with_parent: bool) -> Callable[[], None]:
    def enter() -> None:
        setns_fd(fd)
        if die_with_parent:
            # If the runner dies (even by SIGKILL), its children must not outlive it.
            _c().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return enter


def popen(
    name: str | None, argv: Sequence[str], *, die_with_parent: bool = True, **kwargs: Any
) -> subprocess.Popen[Any]:
    """Start ``argv`` inside namespace ``name`` (or here for None).

    With ``die_with_parent``, the child gets SIGKILL when the thread that started it exits:
    start long-lived children from the thread that owns the lab.
    """
    if name is None:
        return subprocess.Popen(list(argv), **kwargs)
    fd = os.open(ns_path(name), os.O_RDONLY)
    try:
        return subprocess.Popen(list(argv), preexec_fn=_preexec(fd, die_with_parent), **kwargs)
    finally:
        os.close(fd)


def run(
    argv: Sequence[str],
    *,
    ns: str | None = None,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = 20.0,
) -> subprocess.CompletedProcess[str]:
    """Run a short command (in namespace ``ns``) and raise :class:`LabError` when it fails.

    Raises:
        LabError: non-zero exit (with the command's stderr), missing binary, or timeout.
    """
    kwargs: dict[str, Any] = {}
    fd = -1
    if ns is not None:
        fd = os.open(ns_path(ns), os.O_RDONLY)
        kwargs["preexec_fn"] = _preexec(fd, die_with_parent=False)
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: timed out after {timeout} s") from exc
    finally:
        if fd >= 0:
            os.close(fd)
    if check and proc.returncode != 0:
        where = f" (in {ns})" if ns else ""
        detail = (proc.stderr or proc.stdout).strip()
        script = f"\n--- input ---\n{input_text}" if input_text and len(input_text) < 4000 else ""
        raise LabError(f"{' '.join(argv)}{where} failed ({proc.returncode}): {detail}{script}")
    return proc


def write_sysctls(name: str, values: dict[str, str]) -> None:
    """Write ``net.*`` sysctls of namespace ``name`` (``/proc/sys`` follows the writer's netns)."""

    def write() -> None:
        for key, value in values.items():
            path = "/proc/sys/" + key.replace(".", "/")
            with open(path, "w") as f:
                f.write(value)

    in_netns(name, write)


def list_lab_namespaces() -> list[str]:
    """Every lab namespace visible in ``/run/netns``."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if parse_lab_ns_name(n) is not None)


def pids_in(names: Iterable[str]) -> dict[str, list[int]]:
    """Processes whose network namespace is one of ``names`` (like ``ip netns pids``)."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            st = os.stat(ns_path(name))
        except FileNotFoundError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[str, list[int]] = {n: [] for n in wanted.values()}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        ns = wanted.get((st.st_dev, st.st_ino))
        if ns is not None:
            found[ns].append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_and_delete(names: Sequence[str], *, grace_s: float = 1.0) -> None:
    """SIGKILL every process inside ``names``, then delete the namespaces.

    Only processes *inside* lab namespaces are killed: the lab started them all.

    Raises:
        LabError: when a namespace cannot be deleted.
    """
    if not names:
        return
    victims = [pid for pids in pids_in(names).values() for pid in pids if pid != os.getpid()]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace_s
    while victims and time.monotonic() < deadline:
        victims = [p for p in victims if _alive(p) and not _is_zombie(p)]
        if victims:
            time.sleep(0.005)
    existing = [n for n in names if os.path.exists(ns_path(n))]
    if existing:
        run(["ip", "-batch", "-"], input_text="".join(f"netns del {n}\n" for n in existing))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def remove_stale(own_pid: int, *, private: bool = False) -> list[str]:
    """Remove lab namespaces and workdirs whose owner process is gone; return their names.

    Args:
        own_pid: This runner's owner pid: its labs are never stale.
        private: ``/run/netns`` is our private tmpfs (isolated runner): nothing there can be
            stale, and pids of other runners cannot be checked from inside our pid namespace.
    """
    if private:
        return []
    stale = []
    for name in list_lab_namespaces():
        parsed = parse_lab_ns_name(name)
        if parsed is not None and parsed[0] != own_pid and not _alive(parsed[0]):
            stale.append(name)
    if stale:
        log.info("removing %d stale lab namespaces: %s", len(stale), " ".join(stale))
        kill_and_delete(stale)
    tmp = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for entry in os.listdir(tmp):
            m = _WORKDIR_RE.match(entry)
            if m and int(m.group(1)) != own_pid and not _alive(int(m.group(1))):
                shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)
                stale.append(entry)
    return stale


def workdir_prefix(owner_pid: int, number: int) -> str:
    """The ``mkdtemp`` prefix of a lab's workdir (stale ones are found by it)."""
    return f"{LAB_PREFIX}{owner_pid}x{number}-"
