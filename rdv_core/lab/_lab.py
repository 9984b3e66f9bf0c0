"""The :class:`Lab` context manager: build a lab, run things in it, always tear it down.

Teardown is guaranteed three ways:

1. ``__exit__`` kills every process the lab started (and anything else inside its
   namespaces), stops the delayer and deletes the namespaces, even when the body raised.
2. Children get ``PR_SET_PDEATHSIG``: if the runner is SIGKILLed, they die with it; the
   namespaces it leaves are named by its pid and removed by the next :class:`Lab` to start
   (:func:`netns.remove_stale`).
3. ``rdv lab`` runs itself under ``unshare --mount --pid --fork --kill-child`` with a private
   tmpfs on ``/run/netns`` (:mod:`rdv_core.lab._isolate`): when that runner dies, the kernel
   kills every process and frees every namespace it made, with no later clean-up at all.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Any, Literal, TypeVar

from rdv_core.lab import _netns as netns
from rdv_core.lab._builder import (
    QUEUE_NUM,
    SERVER4,
    SERVER_PORT,
    LabPlan,
    plan_lab,
    queue_rules,
)
from rdv_core.lab._environments import PROXY_PORT
from rdv_core.lab._isolate import is_isolated, owner_pid
from rdv_core.lab._netns import LabError
from rdv_core.lab._nfqueue import Delayer
from rdv_core.lab._probe import probe
from rdv_core.lab._services import start_services
from rdv_core.lab._spec import LabSpec, RouterSpec

log = logging.getLogger("rdv.lab")

T = TypeVar("T")

ImpairMethod = Literal["auto", "netem", "nfqueue"]

_numbers = itertools.count(1)


class Lab:
    """A built lab; use as a context manager.

    Example::

        with Lab(get_preset("cone-fw"), rdv_command=["rdv"]) as lab:
            lab.start_server()
            proc = lab.spawn("cliA", ["python3", "-c", "..."])

    Args:
        spec: The lab's specification.
        rdv_command: The argv that runs rdv (``serve``, ``dial``, ``accept`` and their
            options are appended), e.g. ``["rdv"]`` or another rdv/1 implementation. The
            lab runs the real thing, never a stand-in, and does not know where it lives:
            the caller says. None for a lab that runs no rdv (plain sockets only).
        impair: How delay and loss are applied: ``netem``, the ``nfqueue`` delayer, or
            ``auto`` (netem where it works and fits).
        seed: Seed of the NFQUEUE delayer's random jitter and loss (None: random).
        keep_workdir: Keep the workdir after teardown.

    Attributes:
        spec: The lab's specification.
        plan: The addressing plan and namespace names (after enter).
        workdir: A private directory for logs and event files (removed on exit unless ``keep``).
    """

    def __init__(
        self,
        spec: LabSpec,
        *,
        rdv_command: Sequence[str] | None = None,
        impair: ImpairMethod = "auto",
        seed: int | None = None,
        keep_workdir: bool = False,
    ) -> None:
        self.spec = spec
        self.rdv_command = tuple(rdv_command) if rdv_command is not None else None
        self.plan: LabPlan = plan_lab(spec, owner_pid=owner_pid(), number=next(_numbers))
        self.workdir = ""
        self.server_events_path = ""
        self._impair = impair
        self._seed = seed
        self._keep = keep_workdir
        self._created: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._server: subprocess.Popen[Any] | None = None
        self._delayer: Delayer | None = None
        self._files: list[IO[Any]] = []
        self.impairment_method = "none"
        self.build_s = 0.0

    # ----- lifecycle

    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    @property
    def namespaces(self) -> list[str]:
        """The namespaces created so far."""
        return list(self._created)

    def build(self) -> None:
        """Create namespaces, links, addresses, routes, rulesets and impairment.

        Raises:
            LabError: with the failing command and the kernel's words.
        """
        caps = probe()
        if not caps.ok:
            raise LabError(f"cannot build a lab here: {caps.reason}")
        started = time.monotonic()
        netns.remove_stale(self.plan.owner_pid, private=is_isolated())
        self.workdir = tempfile.mkdtemp(
            prefix=netns.workdir_prefix(self.plan.owner_pid, self.plan.number) + "w"
        )
        plan = self.plan
        names = list(plan.namespaces.values())
        # Record first: a half-built lab must still be torn down completely.
        self._created = names
        netns.run(["ip", "-batch", "-"], input_text="".join(f"netns add {n}\n" for n in names))
        for ns in names:
            netns.write_sysctls(ns, plan.sysctls[ns])
        for ns in names:
            netns.run(["ip", "-n", ns, "-batch", "-"], input_text=plan.batches[ns])
        for ns, ruleset in plan.nft.items():
            netns.run(["nft", "-f", "-"], ns=ns, input_text=ruleset)
        self._apply_impairment(caps.netem, caps.nfqueue)
        start_services(self)
        self.build_s = time.monotonic() - started
        log.info("lab %s built in %.0f ms", self.spec.name, self.build_s * 1000)

    def _apply_impairment(self, have_netem: bool, have_nfqueue: bool) -> None:
        impaired = [r for r in self.spec.routers if r.impairment.active]
        far_hosts = [h for h in self.spec.hosts if h.link.active]
        if not impaired and not far_hosts:
            return
        # netem cannot pick one IP family without extra classifiers: the delayer can.
        # Host links go through the delayer too (their netem would share devices with
        # the router's).
        all_families = all(r.impairment.families == frozenset({4, 6}) for r in impaired)
        use_netem = self._impair == "netem" or (
            self._impair == "auto" and have_netem and all_families and not far_hosts
        )
        if use_netem and far_hosts:
            raise LabError("host link impairment needs the NFQUEUE delayer (impair='nfqueue')")
        if use_netem:
            for router in impaired:
                ns = self.plan.ns(router.name)
                devices = [
                    "wan",
                    *(f"h-{h.name}" for h in self.spec.hosts if h.router == router.name),
                ]
                for dev in devices:
                    netns.run(
                        ["tc", "qdisc", "add", "dev", dev, "root", *_netem_args(router)], ns=ns
                    )
            self.impairment_method = "netem"
            return
        if not have_nfqueue and self._impair == "auto":
            raise LabError(
                "this lab needs delay/loss, but neither netem nor the NFQUEUE delayer works "
                "here (install iptables; see `rdv lab list` probe notes)"
            )
        self._delayer = Delayer(seed=self._seed)
        for router in impaired:
            ns = self.plan.ns(router.name)
            for command, script in queue_rules(router.impairment.families).items():
                netns.run([command], ns=ns, input_text=script)
            self._delayer.add(ns, QUEUE_NUM, router.impairment)
        for host in far_hosts:
            ns = self.plan.ns(host.name)
            for command, script in queue_rules(host.link.families, host=True).items():
                netns.run([command], ns=ns, input_text=script)
            self._delayer.add(ns, QUEUE_NUM, host.link)
        self._delayer.start()
        self.impairment_method = "nfqueue"

    def teardown(self) -> None:
        """Stop everything and delete the namespaces; safe to call more than once."""
        errors: list[str] = []
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                errors.append(f"pid {proc.pid} did not die")
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self._procs.clear()
        self._server = None
        if self._delayer is not None:
            self._delayer.close()
            self._delayer = None
        for f in self._files:
            f.close()
        self._files.clear()
        try:
            netns.kill_and_delete(self._created)
        except LabError as exc:
            errors.append(str(exc))
        self._created = []
        if self.workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise LabError("lab teardown: " + "; ".join(errors))

    # ----- running things inside

    def spawn(self, role: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process in ``role``'s namespace; it is killed at teardown at the latest."""
        proc = netns.popen(self.plan.ns(role), argv, **kwargs)
        self._procs.append(proc)
        return proc

    def run(
        self, role: str, argv: Sequence[str], *, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command in ``role``'s namespace."""
        return netns.run(argv, ns=self.plan.ns(role), input_text=input_text, check=check)

    def connect(self, role: str, addr: tuple[str, int], timeout: float = 2.0) -> socket.socket:
        """A TCP connection made from ``role``'s namespace (blocking socket)."""

        def make() -> socket.socket:
            return socket.create_connection(addr, timeout=timeout)

        return netns.in_netns(self.plan.ns(role), make)

    def run_in(self, role: str, fn: Callable[[], T]) -> T:
        """Call ``fn`` in a thread inside ``role``'s namespace (sockets it makes stay there)."""
        return netns.in_netns(self.plan.ns(role), fn)

    def listen(self, role: str, addr: tuple[str, int]) -> socket.socket:
        """A listening TCP socket made in ``role``'s namespace."""
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET

        def make() -> socket.socket:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(16)
            return sock

        return netns.in_netns(self.plan.ns(role), make)

    def log_file(self, name: str) -> IO[bytes]:
        """A file in the workdir for a child's stderr (closed at teardown)."""
        f = open(os.path.join(self.workdir, name), "wb")  # noqa: SIM115 - closed at teardown
        self._files.append(f)
        return f

    def start_server(
        self, timeout: float = 10.0, *, listen: str | None = None, extra_args: Sequence[str] = ()
    ) -> subprocess.Popen[Any]:
        """Start the real rdv server in ``srv`` and wait until it accepts connections.

        ``listen`` replaces ``SERVER4:SERVER_PORT`` and ``extra_args`` are appended (the
        doctor's probe ports and dial-back, :mod:`rdv_core.lab._doctor`).

        Raises:
            LabError: when it exits or does not listen in time (with its stderr).
        """
        if self._server is not None:
            return self._server
        self.server_events_path = os.path.join(self.workdir, "server.jsonl")
        stderr_path = os.path.join(self.workdir, "server.stderr")
        argv = self.rdv_argv(
            "serve",
            "--listen",
            listen or f"{SERVER4}:{SERVER_PORT}",
            "--events",
            self.server_events_path,
            *extra_args,
        )
        proc = self.spawn(
            "srv",
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file("server.stderr"),
        )
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise LabError(f"rdv serve exited with {proc.returncode}: {tail(stderr_path)}")
            try:
                self.connect("srv", (SERVER4, SERVER_PORT), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"rdv serve did not listen within {timeout} s: {tail(stderr_path)}"
                    ) from None
                time.sleep(0.02)
        self._server = proc
        return proc

    def peer_args(self, role: str) -> list[str]:
        """The extra rdv options the host ``role`` needs in this lab (``--proxy``, its own)."""
        return [*self.spec.host(role).rdv_args, *self.proxy_args(role)]

    def proxy_args(self, role: str) -> list[str]:
        """``--proxy URL`` when the host ``role`` reaches the server through a lab proxy."""
        host = self.spec.host(role)
        if host.proxy is None:
            return []
        return ["--proxy", f"http://{self.plan.host_addrs[host.proxy].v4}:{PROXY_PORT}"]

    def rdv_argv(self, *args: str) -> list[str]:
        """The argv of ``rdv ARGS``: the lab's ``rdv_command`` followed by ``args``.

        Raises:
            LabError: the lab was made without an ``rdv_command``.
        """
        if not self.rdv_command:
            raise LabError("this lab cannot run rdv: it was made without an rdv_command")
        return [*self.rdv_command, *args]

    def delayer_stats(self) -> dict[str, tuple[int, int]]:
        """Packets queued / dropped per impaired router namespace (NFQUEUE method only)."""
        return self._delayer.stats() if self._delayer else {}


def tail(path: str, limit: int = 2000) -> str:
    """The end of a log file as text (for error messages)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no output)"
    text = data[-limit:].decode("utf-8", "replace").strip()
    return text or "(no output)"


def exit_reason(name: str, code: int | None, stderr_path: str) -> str:
    """Why a peer's exit fails its run, or "" for exit 0: ``the dialer exited 1: WHY``,
    WHY its last line on stderr (pipe mode's one-line reason, e.g. ``rdv dial: connection
    lost: the direct path went silent for 15 s``, docs/PROTOCOL.md 16.10)."""
    if code == 0:
        return ""
    lines = tail(stderr_path).splitlines()
    said = lines[-1].strip() if lines else "(no output)"
    return f"the {name} exited {code}: {said}"


def _netem_args(router: RouterSpec) -> list[str]:
    imp = router.impairment
    args = ["netem", "delay", f"{imp.delay_ms}ms"]
    if imp.jitter_ms:
        args.append(f"{imp.jitter_ms}ms")
    if imp.loss:
        args += ["loss", f"{imp.loss * 100}%"]
    return args
