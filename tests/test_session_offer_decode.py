"""Offers and accepts decode per entry inline (docs/PROTOCOL.md 12.4): the same verdicts.

The common entry is checked without the field-by-field helpers; whatever it does not
take goes through them, so a malformed entry still ends the session with its reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rdv_core.session import FrameError
from rdv_core.session import _frames as fr

TOP = (1 << 63) - 1


def _offer(entry: Any) -> bytes:
    return bytes([fr.FrameType.OFFER]) + json.dumps({"batch": 1, "files": [entry]}).encode()


def _accept(pair: Any) -> bytes:
    body = {"batch": 1, "offsets": [pair], "failed": []}
    return bytes([fr.FrameType.ACCEPT]) + json.dumps(body).encode()


def test_good_entries_decode() -> None:
    offer = fr.decode(_offer([(1 << 32) - 1, "a/b", TOP, 0]))
    assert offer == fr.Offer(1, (fr.OfferedFile((1 << 32) - 1, "a/b", TOP, 0),), None)
    assert fr.decode(_accept([5, TOP])) == fr.Accept(1, ((5, TOP),), ())


@pytest.mark.parametrize(
    "entry",
    [
        [True, "a", 1, 1],
        [1 << 32, "a", 1, 1],
        [-1, "a", 1, 1],
        [1, 7, 1, 1],
        [1, "x" * 4097, 1, 1],
        [1, "a", 1.0, 1],
        [1, "a", TOP + 1, 1],
        [1, "a", 1, -1],
        [1, "a", 1],
        [1, "a", 1, 1, 1],
        {"id": 1},
    ],
)
def test_bad_offer_entries_still_end_the_session(entry: Any) -> None:
    with pytest.raises(FrameError, match="malformed offer frame"):
        fr.decode(_offer(entry))


@pytest.mark.parametrize(
    "pair", [[1, -1], [1, False], [1 << 32, 0], [1, TOP + 1], [1], [1, 2, 3], [1.5, 0], "x"]
)
def test_bad_accept_pairs_still_end_the_session(pair: Any) -> None:
    with pytest.raises(FrameError, match="malformed accept frame"):
        fr.decode(_accept(pair))
