"""Run one of the README's Python examples as a user would, inside a fresh network namespace.

``python tests/readme_examples.py NAME`` is started by ``tests/test_readme_examples.py``
under ``unshare --net``: the namespace has nothing but ``lo``, so the examples run as
written (``AddrSpace.DEFAULT``, port 8080) and no byte can leave the namespace. Each
example is the code block after ``<!-- example: NAME -->`` in README.md, saved to a file in
a temporary folder and run with the interpreter of the test. Exit status 0 means the
example did what the README says; anything else prints what went wrong.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
URL = "http://127.0.0.1:8080"
RDV = [sys.executable, "-m", "rdv_tui"]
TIMEOUT_S = 30.0


def example(name: str) -> str:
    """The code block that follows ``<!-- example: NAME -->`` in the README."""
    pattern = rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```"
    found = re.search(pattern, README.read_text(), re.S)
    if found is None:
        raise SystemExit(f"README has no example {name!r}")
    return found.group(1)


def wait_for_port(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def start(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.Popen[str]:
    """Start a process; ``stdin`` is written and closed (None: stdin stays an open pipe)."""
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        proc.stdin = None  # so that communicate() does not touch it again
    return proc


def finish(proc: subprocess.Popen[str], what: str) -> str:
    """Wait for a process to exit 0; its stdout."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise SystemExit(f"{what} hung:\n{out}\n{err}") from None
    if proc.returncode != 0:
        raise SystemExit(f"{what} exited {proc.returncode}:\n{out}\n{err}")
    return out


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(message)


def with_server(run: Callable[[Path], None], work: Path) -> None:
    """``rdv serve`` on 127.0.0.1:8080 while ``run`` runs."""
    server = start([*RDV, "serve", "--listen", "127.0.0.1:8080"], work)
    try:
        wait_for_port(8080, server)
        run(work)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=TIMEOUT_S)


def run_peer(work: Path) -> None:
    (work / "peer.py").write_text(example("peer"))

    def both(work: Path) -> None:
        accepter = start([sys.executable, "peer.py", URL, "accept"], work)
        dialer = start([sys.executable, "peer.py", URL, "dial"], work)
        for proc, role in ((dialer, "dial"), (accepter, "accept")):
            out = finish(proc, f"peer.py {role}")
            # Only lo exists here, and DEFAULT excludes loopback: the relay carries it.
            check("relay" in out and "b'hello\\n'" in out, f"peer.py {role} printed:\n{out}")
            check((work / f"race-{role}.jsonl").stat().st_size > 0, f"race-{role}.jsonl empty")

    with_server(both, work)


def run_transfer(work: Path) -> None:
    (work / "transfer.py").write_text(example("transfer"))
    (work / "photo.jpg").write_bytes(bytes(range(256)) * 400)
    inbox = work / "inbox"
    inbox.mkdir()

    def send_and_receive(work: Path) -> None:
        sender = start([sys.executable, "transfer.py", URL, "send", "photo.jpg"], work)
        assert sender.stdout is not None
        first = sender.stdout.readline()
        check(first.startswith("code: "), f"transfer.py send printed {first!r} first")
        code = first.split()[1]
        receiver = start([sys.executable, str(work / "transfer.py"), URL, "receive", code], inbox)
        received = finish(receiver, "transfer.py receive")
        sent = finish(sender, "transfer.py send")
        check("verified" in sent, f"transfer.py send printed:\n{sent}")
        check("offered:" in received, f"transfer.py receive printed:\n{received}")
        copy = inbox / "photo.jpg"
        check(copy.read_bytes() == (work / "photo.jpg").read_bytes(), "the copy differs")

    with_server(send_and_receive, work)


def pair_through(url: str, token: str, headers: list[str], work: Path) -> None:
    """An ``rdv accept``/``rdv dial`` pair on ``url``: the dialer's line must arrive."""
    extra = [arg for header in headers for arg in ("-H", header)]
    # The accepter keeps its stdin open: through the relay the first EOF ends the pair.
    accepter = start([*RDV, "accept", *extra, url, token], work)
    dialer = start([*RDV, "dial", *extra, url, token], work, stdin="through the relay\n")
    finish(dialer, f"rdv dial {url} {token}")  # first: finish() closes the accepter's stdin
    out = finish(accepter, f"rdv accept {url} {token}")
    check(out == "through the relay\n", f"rdv accept printed {out!r}")


def run_aiohttp(work: Path) -> None:
    (work / "app.py").write_text(example("aiohttp"))
    app = start([sys.executable, "app.py"], work)
    try:
        wait_for_port(8080, app)
        pair_through(f"{URL}/rdv", "mytoken", ["Authorization: Bearer s3cret"], work)
        refused = start([*RDV, "dial", f"{URL}/rdv", "mytoken"], work, stdin="")
        _, err = refused.communicate(timeout=TIMEOUT_S)
        check(refused.returncode == 1 and "401" in err, f"no key: exit {refused.returncode}, {err}")
    finally:
        app.send_signal(signal.SIGINT)
        app.communicate(timeout=TIMEOUT_S)
    check(app.returncode == 0, f"app.py exited {app.returncode} on SIGINT")


def run_server(work: Path) -> None:
    (work / "server.py").write_text(example("server"))
    server = start([sys.executable, "server.py"], work)
    try:
        wait_for_port(8080, server)
        pair_through(f"{URL}/rdv", "team-blue", [], work)
        refused = start([*RDV, "dial", f"{URL}/rdv", "stranger"], work, stdin="")
        _, err = refused.communicate(timeout=TIMEOUT_S)
        check(refused.returncode == 1 and "403" in err, f"stranger: exit {refused.returncode}")
    finally:
        server.send_signal(signal.SIGTERM)
    out = finish(server, "server.py")
    check("ServerStats(" in out, f"server.py printed no stats on SIGTERM:\n{out}")
    check("unknown token" in out, f"server.py printed no rejection event:\n{out}")


EXAMPLES: dict[str, Callable[[Path], None]] = {
    "peer": run_peer,
    "transfer": run_transfer,
    "aiohttp": run_aiohttp,
    "server": run_server,
}


def main() -> None:
    name = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix=f"rdv-readme-{name}-") as tmp:
        EXAMPLES[name](Path(tmp))
    print(f"README example {name}: ok")


if __name__ == "__main__":
    main()
