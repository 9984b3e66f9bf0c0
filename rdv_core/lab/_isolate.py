"""Run the lab runner in private mount + pid namespaces, so the kernel cleans up after it.

``rdv lab`` re-executes itself as::

    unshare --mount --pid --net --fork --kill-child --mount-proc [--user --map-root-user] -- ARGV

and the inner process mounts a private tmpfs on ``/run`` (holding ``/run/netns`` and its
temporary files; docs/LAB-NOTES.md section 3). Then:

- every process the lab starts lives in the private pid namespace: when the runner dies,
  even by SIGKILL, ``--kill-child`` kills its init and the kernel kills all the rest;
- the lab's named namespaces are bind mounts in the private tmpfs: when the last process of
  the mount namespace is gone, so are they, the network namespaces, and the event files.

Without root, ``--user --map-root-user`` makes the same work rootless where the system allows
unprivileged user namespaces.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Final

from rdv_core.lab._netns import NETNS_DIR

#: Set in the environment of the re-executed runner.
ISOLATED_ENV: Final = "RDV_LAB_ISOLATED"
#: The outer runner's pid (the ``unshare`` process), used to name namespaces and workdirs.
OWNER_ENV: Final = "RDV_LAB_OWNER"

_MS_NOSUID: Final = 0x2
_MS_NODEV: Final = 0x4


def is_isolated() -> bool:
    """True inside the private namespaces set up by :func:`reexec_isolated`."""
    return os.environ.get(ISOLATED_ENV) == "1"


def owner_pid() -> int:
    """The pid that names this runner's labs (the outer pid when isolated)."""
    if is_isolated():
        try:
            return int(os.environ[OWNER_ENV])
        except (KeyError, ValueError):
            pass
    return os.getpid()


def can_isolate() -> bool:
    """True when ``unshare`` exists (whether it works is seen when it runs)."""
    return shutil.which("unshare") is not None


def isolated_argv(argv: Sequence[str], *, rootless: bool | None = None) -> list[str]:
    """``argv`` wrapped in the unshare command line."""
    if rootless is None:
        rootless = os.geteuid() != 0
    # --net: the runner itself sits in an empty namespace of its own. Rootless, this is
    # required: `ip netns add` returns to the creator's namespace with setns, which a user
    # namespace may only do into namespaces it owns.
    cmd = ["unshare", "--mount", "--pid", "--net", "--fork", "--kill-child", "--mount-proc"]
    if rootless:
        cmd += ["--user", "--map-root-user"]
    return [*cmd, "--", *argv]


def reexec_isolated(argv: Sequence[str]) -> None:
    """Replace this process with ``argv`` running isolated (does not return).

    The pid stays the same (``exec``), so whoever started us can still kill the runner.
    """
    env = dict(os.environ)
    env[ISOLATED_ENV] = "1"
    env[OWNER_ENV] = str(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    full = isolated_argv(argv)
    os.execvpe(full[0], full, env)


def _mount_tmpfs(target: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"rdvlab", target.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=755") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target}: {os.strerror(err)}")


def setup_inside() -> None:
    """In the isolated runner: a private tmpfs on ``/run`` holding ``/run/netns`` and the
    runner's temporary files, so that both vanish with the mount namespace.

    Raises:
        OSError: when the tmpfs cannot be mounted.
    """
    run_dir = os.path.dirname(NETNS_DIR)
    _mount_tmpfs(run_dir)
    os.makedirs(NETNS_DIR, exist_ok=True)
    tmp = os.path.join(run_dir, "rdvlab")
    os.makedirs(tmp, exist_ok=True)
    # Workdirs and event files go there too: a SIGKILL leaves nothing in the real /tmp.
    tempfile.tempdir = tmp
    os.environ["TMPDIR"] = tmp
