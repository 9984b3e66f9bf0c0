"""The plain-ASCII fast path of the offered-name check refuses exactly what the full one does.

``check_relative_path`` checks a plain ASCII name as a whole and its components with
fewer steps (docs/PROTOCOL.md 12.8); every name must get the same verdict and the same
reason as the component-by-component check it shortcuts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdv_core.session import _safepath
from rdv_core.session._errors import UnsafeName
from rdv_core.session._safepath import check_relative_path


def _full_check(path: str) -> tuple[str, ...] | str:
    """The verdict of the component-by-component check (the slow path), as text."""
    try:
        if not path or len(path) > _safepath.MAX_PATH_CHARS or "\x00" in path:
            return check_relative_path(path)  # decided before any component
        if path.startswith("/") or _safepath._DRIVE.match(path):
            return check_relative_path(path)
        parts = tuple(path.split("/"))
        if len(parts) > _safepath.MAX_DEPTH:
            return check_relative_path(path)
        for part in parts:
            _safepath._check_component.__wrapped__(part)
        if parts[-1].endswith((_safepath.PARTIAL_SUFFIX, _safepath.SIDECAR_SUFFIX)):
            return check_relative_path(path)  # the suffix check: after every component
        return parts
    except UnsafeName as exc:
        return str(exc)


def _verdict(path: str) -> tuple[str, ...] | str:
    try:
        return check_relative_path(path)
    except UnsafeName as exc:
        return str(exc)


HARD = [
    "a/b.txt",
    "CON",
    "con.txt",
    "a/COM1.tar.gz",
    "LPT9 .x",
    "a./b",
    "a /b",
    "a//b",
    "./a",
    "a/../b",
    "x" * 255,
    "x" * 256,
    "d/" + "y" * 256,
    "a/b.rdvpart",
    "a/b.rdvpart.json",
    "a\\b",
    "a:b",
    "c:/x",
    "a\x1bb",
    "a\x7fb",
    "a\u202eb",
    "caf\u00e9/\u00e9" * 3,
    "\u00e9" * 128,
    "\u00e9" * 127,
    "a\ud800b",
    "CLOCK$",
    "COM\u00b9",
    " ",
    "a/ b",
]


@pytest.mark.parametrize("name", HARD)
def test_hard_names_get_the_full_checks_verdict(name: str) -> None:
    assert _verdict(name) == _full_check(name)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(
                [*"abcXYZ09 .-_~:/\\*?<>|", "\x00", "\x1f", "\u202e", "\u00e9"]
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_name_gets_the_full_checks_verdict(parts: list[str]) -> None:
    name = "/".join(parts)
    assert _verdict(name) == _full_check(name)


def test_a_refused_plain_name_is_refused_every_time() -> None:
    # The folder check is cached: a refused folder must not be cached as fine.
    for _ in range(3):
        with pytest.raises(UnsafeName, match="reserved device name"):
            check_relative_path("AUX/file.txt")
