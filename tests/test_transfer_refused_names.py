"""A folder with a few names the receiver would refuse (``aux.c``, a trailing dot, a
newline), sent as real processes against a real server on loopback.

One such name among thousands stopped the whole send before anything moved
(``rdv send: .../aux.c: the receiver would refuse the name ...``, exit 2): the user had
to find and rename every one, one run at a time. Now the rest is sent, each name left
out gets its own ``not sent:`` line, and the end says it was partial (exit 1).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rdv_core.session import collect

from tests.test_session_cli import rdv

_HOSTILE = ("aux.c", "trail.", "new\nline")


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_bytes(b"ok\n")
    (folder / "sub" / "fine.txt").write_bytes(b"fine\n")
    for name in _HOSTILE:
        (folder / name).write_bytes(b"x")
    return folder


def test_collect_lists_refused_names_instead_of_raising(tmp_path: Path) -> None:
    refused: list[tuple[str, str]] = []
    files = collect([_folder(tmp_path)], None, refused)
    assert [f.name for f in files] == ["src/ok.txt", "src/sub/fine.txt"]
    assert sorted(Path(where).name for where, _ in refused) == sorted(_HOSTILE)
    assert dict(refused)[str(tmp_path / "src" / "aux.c")] == "reserved device name 'aux.c'"


async def test_the_rest_is_sent_and_the_end_says_partial(url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    dl = tmp_path / "dl"
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, out_s, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(folder), "--code", "4301-fox-opal", *common),
        rdv("receive", "4301-fox-opal", "--dir", str(dl), "--yes", *common),
    )
    assert rc_r == 0, err_r
    assert rc_s == 1, (out_s, err_s)
    assert out_s.startswith("Sending 2 files, 8 B."), out_s
    assert f"not sent: {folder}/aux.c (the receiver would refuse the name: reserved " in err_s
    assert f"not sent: {folder}/trail. (the receiver would refuse" in err_s, err_s
    assert f"not sent: {folder}/new\\x0aline (the receiver would refuse" in err_s, err_s
    last = err_s.strip().splitlines()[-1]
    assert last == (
        "rdv send: partial: the receiver verified all 2 files sent; 3 not sent (names "
        f"the receiver would refuse: {folder}/aux.c, {folder}/new\\x0aline, {folder}/trail.)"
    ), err_s
    assert (dl / "src" / "ok.txt").read_bytes() == b"ok\n"
    assert (dl / "src" / "sub" / "fine.txt").read_bytes() == b"fine\n"
    assert sorted(p.name for p in (dl / "src").iterdir()) == ["ok.txt", "sub"]


async def test_only_refused_names_is_nothing_to_send(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "con").write_bytes(b"x")
    rc, out, err = await rdv("send", str(folder), "--server", "http://127.0.0.1:1")
    assert rc == 2 and not out, (out, err)
    assert err == (
        f"rdv send: nothing to send: {folder}/con: the receiver would refuse the name: "
        "reserved device name 'con'\n"
    ), err


async def test_more_than_twenty_are_counted_not_listed(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ok").write_bytes(b"x")
    for i in range(25):
        (folder / f"n{i:02d}.").write_bytes(b"x")
    # No server answers there: the listing is said before the wait, then it fails.
    rc, _, err = await rdv("send", str(folder), "--server", "http://127.0.0.1:1")
    assert rc == 1, err
    assert err.count("(the receiver would refuse the name:") == 20, err
    assert "not sent: 5 more names the receiver would refuse\n" in err, err
