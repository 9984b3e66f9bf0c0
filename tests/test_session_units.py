"""Codes, safe paths and key derivation, as tables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdv_core.session import CodeError, UnsafeName, generate_code, parse_code
from rdv_core.session._codes import TOKEN_PREFIX, WORDS
from rdv_core.session._crypto import Opener, Sealer
from rdv_core.session._safepath import check_relative_path, numbered, place_without_overwrite


def test_wordlist() -> None:
    assert len(WORDS) == 256 and len(set(WORDS)) == 256
    assert all(w.isalpha() and w.islower() for w in WORDS)


def test_generated_codes_parse() -> None:
    for _ in range(50):
        text = generate_code()
        code = parse_code(text)
        assert str(code) == text
        assert code.token == TOKEN_PREFIX + text.split("-")[0]
        assert code.secret not in code.token
        assert "secret" not in repr(code) or "<hidden>" in repr(code)
        assert code.secret not in repr(code)


@pytest.mark.parametrize(
    ("text", "nameplate", "secret"),
    [
        ("7-tulip-orbit", "7", "tulip-orbit"),
        ("  7-Tulip-ORBIT \n", "7", "tulip-orbit"),
        ("7 tulip orbit", "7", "tulip-orbit"),
        ("abc-x", "abc", "x"),
    ],
)
def test_parse_code(text: str, nameplate: str, secret: str) -> None:
    code = parse_code(text)
    assert (code.nameplate, code.secret) == (nameplate, secret)


@pytest.mark.parametrize("text", ["", "7", "7-", "-tulip", "7--x", "a/b-c", "7-" + "x" * 201])
def test_bad_codes(text: str) -> None:
    with pytest.raises(CodeError):
        parse_code(text)


@pytest.mark.parametrize(
    "name", ["a.txt", "dir/sub/file.bin", "ünïcødé ✓.txt", ".hidden", "con.d/x", "a b/c d"]
)
def test_safe_names(name: str) -> None:
    # ``con.d`` is fine on Windows only as a dir name... it is CON with an extension: refused.
    if name.startswith("con."):
        with pytest.raises(UnsafeName):
            check_relative_path(name)
        return
    assert check_relative_path(name) == tuple(name.split("/"))


def test_numbered_names(tmp_path: Path) -> None:
    assert numbered(tmp_path / "a.tar.gz", 2).name == "a (2).tar.gz"
    assert numbered(tmp_path / "README", 1).name == "README (1)"
    assert numbered(tmp_path / ".bashrc", 1).name == ".bashrc (1)"
    src = tmp_path / "src"
    src.write_text("new")
    (tmp_path / "t.txt").write_text("old")
    assert place_without_overwrite(src, tmp_path / "t.txt") == tmp_path / "t (1).txt"
    assert (tmp_path / "t.txt").read_text() == "old" and not src.exists()


def test_counter_nonces_detect_replay_and_reorder() -> None:
    key = bytes(range(32))
    sealer, opener = Sealer(key), Opener(key)
    first, second = sealer.seal(b"one"), sealer.seal(b"two")
    out = memoryview(bytearray(16))
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        opener.open_into(second, out)  # reordered
    assert bytes(out[: opener.open_into(first, out)]) == b"one"
    with pytest.raises(InvalidTag):
        opener.open_into(first, out)  # replayed
    assert bytes(out[: opener.open_into(second, out)]) == b"two"


async def test_key_exchange_directions(tmp_path: Path) -> None:
    from rdv_core.session._channel import StreamChannel
    from rdv_core.session._crypto import exchange_keys

    from tests.session_support import stream_pair

    async with stream_pair() as ((ra, wa), (rb, wb)):
        code = parse_code("5-fig-owl")
        (sa, oa), (sb, ob) = await asyncio.gather(
            exchange_keys(StreamChannel(ra, wa), code, is_dialer=True),
            exchange_keys(StreamChannel(rb, wb), code, is_dialer=False),
        )
    out = memoryview(bytearray(64))
    assert bytes(out[: ob.open_into(sa.seal(b"a->b"), out)]) == b"a->b"
    assert bytes(out[: oa.open_into(sb.seal(b"b->a"), out)]) == b"b->a"
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):  # a reflected frame does not open
        oa.open_into(sa.seal(b"reflected"), out)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80)
    | st.lists(st.sampled_from(["..", ".", "", "a", "CON", "x/"]), max_size=5).map("/".join)
)
def test_accepted_names_stay_inside(name: str) -> None:
    """Whatever the sender names, an accepted name resolves inside the download folder."""
    import os

    try:
        parts = check_relative_path(name)
    except UnsafeName:
        return
    base = "/srv/downloads"
    joined = os.path.normpath(os.path.join(base, *parts))
    assert joined.startswith(base + "/")
    assert all(p not in ("", ".", "..") and "\x00" not in p and "\\" not in p for p in parts)
