"""``rdv send`` / ``rdv receive`` / ``rdv tui`` / ``rdv demo`` as a new user runs them
(issue 16): bad input refused before anything is printed, one-line errors, the saved
name after a collision, typed-ahead input, what happened to each file, and clean-up
when the demo's terminal goes away."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from rich.progress import Progress

from rdv_core.client._client import Client
from rdv_core.session import TransferRejected, TransferResult, connect_session
from rdv_core.wire import AddrSpace
from rdv_tui.cli import build_parser, main
from rdv_tui.cli.commands import tui
from rdv_tui.cli.formatting import human_done, human_rate, join_reason
from rdv_tui.progress_columns import RateColumn, SizeDoneColumn

from tests.proc_support import kill_left

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDV_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("RDV_SERVER", raising=False)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--server", "htp://x"], "must be http:// or https://"),
        (["--server", "http://h:1/rdv?x=1"], "query string"),
        (["--server", "http://me@h:1"], "user@"),
        (["--server", "http://[::1:8080"], "'http://[::1:8080'"),
        (["--server", "http://h:1", "--code", "x-y"], "starts with the number"),
        (["--server", "http://h:1", "--code", "7-y"], "too short"),
        (["--server", "http://h:1", "--spaces", "moon"], "--spaces"),
        (["--server", "http://h:1", "--wait", "-1"], "--wait"),
    ],
)
def test_send_checks_everything_before_printing(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hi")
    assert main(["send", str(source), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no code, no command for the other machine
    assert says in err
    assert err.count("\n") == 1  # one line, though stderr is not a terminal and it is long


@pytest.mark.parametrize(
    ("code", "says"), [("apple river", "starts with the number"), ("7-ab", "too short")]
)
def test_receive_refuses_loose_codes(
    code: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receive", code, "--server", "http://h:1", "--dir", str(tmp_path)]) == 2
    assert says in capsys.readouterr().err


def test_empty_replay_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "race.jsonl"
    empty.write_text("")
    assert tui.run(build_parser().parse_args(["tui", "--replay", str(empty)])) == 2
    assert "no events" in capsys.readouterr().err


def test_a_replay_file_with_a_wrong_type_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``"t": "x"`` used to open the dashboard and end it with a TypeError traceback."""
    bad = tmp_path / "race.jsonl"
    bad.write_text('{"type":"DialStarted","t":"x","candidate":{"id":1,"addr":"192.0.2.1:5",'
                   '"space":"public4","origin":"self"}}\n')  # fmt: skip
    assert tui.run(build_parser().parse_args(["tui", "--replay", str(bad)])) == 2
    assert "line 1: DialStarted: field 't' is 'x', not float" in capsys.readouterr().err
    bad.write_bytes(b"\xff\xfe\x00binary")
    assert tui.run(build_parser().parse_args(["tui", "--replay", str(bad)])) == 2
    assert "not a text file" in capsys.readouterr().err


def test_one_unit_convention_and_reasons_said_once() -> None:
    assert human_done(1000, 1000) == "1000/1000 B"
    assert human_done(1536, 3 * 1024 * 1024) == "0.0/3.0 MiB"
    assert human_rate(11.2 * 1024 * 1024) == "11.2 MiB/s"
    progress = Progress()
    task_id = progress.add_task("x", total=3 * 1024 * 1024, completed=1024 * 1024)
    task = progress.tasks[0]
    assert str(SizeDoneColumn().render(task)) == "1.0/3.0 MiB"
    assert "MB" not in str(RateColumn().render(task)) and task_id == 0
    assert join_reason("read-only file system", "Read-only file system") == (
        "read-only file system"
    )
    assert join_reason("declined", "declined by the receiver") == "declined by the receiver"
    assert join_reason("the receiver declined", "declined by the receiver") == (
        "the receiver declined"
    )
    assert join_reason("unreachable (errno 101)", "[Errno 101] Connect call failed") == (
        "unreachable (errno 101)"
    )
    assert join_reason("eof", "the conn was closed") == "eof (the conn was closed)"


async def rdv(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rdv_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_receive_names_the_file_it_saved_after_a_collision(url: str, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f1.dat").write_bytes(b"new data")
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "f1.dat").write_bytes(b"an older, other file")
    # A server on loopback: both sides race over loopback (classic start, so the race alone
    # decides the path; fast start would begin on the relay).
    common = ["--server", url, "--no-fast-start"]
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(tmp_path / "src" / "f1.dat"), "--code", "41-otter-quill", *common),
        rdv("receive", "41-otter-quill", "--dir", str(dl), "--yes", *common),
    )
    assert (rc_s, rc_r) == (0, 0), (err_s, err_r)
    saved = sorted(p.name for p in dl.iterdir())
    assert saved == ["f1 (1).dat", "f1.dat"]
    assert "verified f1 (1).dat" in err_r and "verified f1.dat" not in err_r
    assert "connected, encrypted: p2p" in err_r  # loopback spaces by default here


async def test_receive_prints_bracketed_names_as_they_are(url: str, tmp_path: Path) -> None:
    """Rich reads ``[...]`` as markup: a folder ``dl [final][/x]`` ended ``rdv receive``
    with a MarkupError after the transfer, and ``[final]`` alone vanished from its lines."""
    src = tmp_path / "notes [draft].txt"
    src.write_bytes(b"draft")
    dl = tmp_path / "dl [final][" / "x]"  # the path reads .../dl [final][/x]
    dl.mkdir(parents=True)
    common = ["--server", url, "--no-fast-start"]
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", "42-otter-quill", *common),
        rdv("receive", "42-otter-quill", "--dir", str(dl), "--yes", *common),
    )
    assert (rc_s, rc_r) == (0, 0), (err_s, err_r)
    assert (dl / src.name).read_bytes() == b"draft"
    flat = " ".join(err_r.split())  # Rich wraps long lines
    assert f"into {dl}" in flat and f"verified in {dl}" in flat, err_r
    assert "verified notes [draft].txt" in flat


class Terminal:
    """A child process on a pseudo-terminal; collects what it writes."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        ignore: tuple[signal.Signals, ...] = (),
    ) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            for signum in ignore:  # as nohup does: ignored across exec
                signal.signal(signum, signal.SIG_IGN)
            os.execvpe(
                sys.executable,
                [sys.executable, "-m", "rdv_tui", *args],
                {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})},
            )
        os.set_blocking(self.fd, False)
        self.output = b""

    def read(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    return
                self.output += chunk

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    async def wait_for(self, check: Callable[[], bool], limit: float = 30.0) -> None:
        async with asyncio.timeout(limit):
            while not check():  # noqa: ASYNC110 (the pty reader fills a buffer; poll it)
                await asyncio.sleep(0.02)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    async def exit_status(self, limit: float = 20.0) -> int:
        async with asyncio.timeout(limit):
            while True:
                pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG)
                if pid:
                    return os.waitstatus_to_exitcode(status)
                await asyncio.sleep(0.05)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


async def test_typed_ahead_line_never_answers_an_offer(url: str, tmp_path: Path) -> None:
    """A line typed before the prompt (a chat reply) must not decline the next offer;
    at the end the receiver says what happened to each file."""
    files = []
    for name in ("a.bin", "b.bin", "c.bin"):
        (tmp_path / name).write_bytes(name.encode() * 100)
        files.append(tmp_path / name)
    dl = tmp_path / "dl"
    code = "52-otter-quill"
    term = Terminal(["receive", code, "--server", url, "--dir", str(dl)])
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    sender = None
    try:
        client = Client(spaces=AddrSpace.LOOPBACK, timeout=30)
        sender = await connect_session(url, code, "send", client=client)
        session = sender

        async def offer(path: Path, answer: str, nth: int) -> asyncio.Task[list[TransferResult]]:
            """Offer ``path``; answer the ``nth`` prompt once it shows."""
            task = loop.create_task(session.send_paths([path]))
            await term.wait_for(lambda: term.text().count("[y/N]") >= nth)
            term.type(answer)
            return task

        await (await offer(files[0], "y\n", 1))
        await sender.send_chat("shall I send the rest?")
        await term.wait_for(lambda: "cannot send any" in term.text())
        term.type("sure, go on\n")  # typed ahead: this command cannot chat
        await asyncio.sleep(0.3)  # it sits in the terminal's buffer
        await (await offer(files[1], "y\n", 2))  # accepted: the prompt was answered
        with pytest.raises(TransferRejected):
            await (await offer(files[2], "n\n", 3))
        await sender.close()
        status = await term.exit_status()
        loop.remove_reader(term.fd)
        term.read()
        text = " ".join(term.text().split())
        assert status == 1, text
        assert "2 files verified" in text
        assert "1 declined (c.bin): you declined" in text
        assert sorted(p.name for p in dl.iterdir()) == ["a.bin", "b.bin"]
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        if sender is not None and sender.conn is not None:
            await sender.close()
            await sender.conn.close()
        term.close()


@contextlib.asynccontextmanager
async def running_demo(
    tmp_path: Path, ignore: tuple[signal.Signals, ...] = ()
) -> AsyncIterator[tuple[Terminal, Callable[[], list[Path]]]]:
    """``rdv demo`` on a pty, once its folder exists and the app took the terminal over
    (alternate screen); with a check of the demo folders left in ``tmp_path``."""
    term = Terminal(
        ["demo", "--export-dir", str(tmp_path)], env={"TMPDIR": str(tmp_path)}, ignore=ignore
    )
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)

    def folders() -> list[Path]:
        return list(tmp_path.glob("rdv-demo-*"))

    try:
        await term.wait_for(lambda: bool(folders()) and b"\x1b[?1049h" in term.output)
        await asyncio.sleep(0.3)
        yield term, folders
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()


async def test_demo_cleans_up_its_folder_when_its_terminal_closes(tmp_path: Path) -> None:
    """SIGHUP (a closed terminal); SIGTERM takes the same handlers (``EXIT_SIGNALS``) and
    was checked by hand, to keep the suite short."""
    async with running_demo(tmp_path) as (term, folders):
        os.kill(term.pid, signal.SIGHUP)
        status = await term.exit_status()
        assert not folders(), (status, term.text()[-500:])


async def test_demo_under_nohup_keeps_the_hangup_ignored(tmp_path: Path) -> None:
    """``nohup rdv demo``: SIGHUP, inherited as ignored, stays ignored (the app took it
    over anyway and quit with 129); SIGTERM still quits cleanly, the folder removed."""
    async with running_demo(tmp_path, ignore=(signal.SIGHUP,)) as (term, folders):
        os.kill(term.pid, signal.SIGHUP)
        await asyncio.sleep(0.3)
        os.kill(term.pid, signal.SIGTERM)
        status = await term.exit_status()
        assert status == 128 + signal.SIGTERM, term.text()[-500:]
        assert not folders()


def test_disk_errors_say_their_cause_once() -> None:
    import errno

    from rdv_core.session._transfers import describe_os_error

    text = describe_os_error(OSError(errno.EROFS, "Read-only file system"), "writing f")
    assert text == "writing f: read-only file system"
    text = describe_os_error(OSError(errno.ENOSPC, "No space left on device"), "writing f")
    assert text == "writing f: disk full (No space left on device)"
