"""Feed sans-IO parsers the same input whole, one byte at a time and at random splits."""

from __future__ import annotations

import itertools
import random
from typing import Literal

from rdv_core.wire import Head, HeadParser, LineBuffer

#: Ways to cut an input into chunks; parametrize tests with it.
SPLITS: tuple[str, ...] = ("whole", "bytewise", "random-1", "random-2", "random-3")


def split(data: bytes, how: str) -> list[bytes]:
    """``data`` cut into chunks: ``whole``, ``bytewise`` or ``random-<seed>`` (1-8 cuts)."""
    if how == "whole" or len(data) < 2:
        return [data]
    if how == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    seed = int(how.removeprefix("random-"))
    rng = random.Random(seed * 7919 + len(data))
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 8))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_head(
    kind: Literal["request", "response"], chunks: list[bytes], max_size: int | None = None
) -> tuple[Head, bytes]:
    """Feed chunks to a fresh :class:`HeadParser`; return the head and every byte after it.

    Raises:
        ProtocolError: whatever the parser raises.
        AssertionError: when the head never completes.
    """
    parser = HeadParser(kind) if max_size is None else HeadParser(kind, max_size)
    head: Head | None = None
    for chunk in chunks:
        got = parser.feed(chunk)
        if head is not None:
            assert got is head, "the parser must keep returning the same head"
        head = got
    assert head is not None, "the head never completed"
    return head, parser.trailing


def feed_lines(chunks: list[bytes], max_line: int | None = None) -> tuple[list[bytes], bytes]:
    """Feed chunks to a :class:`LineBuffer`, taking lines as they complete; return the
    lines and the bytes left over."""
    buffer = LineBuffer() if max_line is None else LineBuffer(max_line)
    lines: list[bytes] = []
    for chunk in chunks:
        buffer.feed(chunk)
        while (line := buffer.next_line()) is not None:
            lines.append(line)
    return lines, buffer.rest()
