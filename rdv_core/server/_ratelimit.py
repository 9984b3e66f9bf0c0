"""Token buckets, per client IP and global, for the doctor's probe routes (docs/PROTOCOL.md 14.1).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a request
takes one token or is refused. The per-IP table is bounded: past ``max_keys`` entries the
least recently used one is forgotten (a forgotten IP starts again with a full bucket, which
the global bucket still bounds).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: Entries of a per-IP table at most (a few hundred KiB).
MAX_KEYS: Final = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBucket:
    """One bucket: ``burst`` tokens, ``rate`` per second."""

    __slots__ = ("_bucket", "_clock", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._bucket = _Bucket(burst, clock())

    def take(self) -> bool:
        """Take one token if there is one."""
        return _take(self._bucket, self.rate, self.burst, self._clock())

    def retry_after(self) -> float:
        """Seconds until a token is back (0 when one is there)."""
        return _retry_after(self._bucket, self.rate, self.burst, self._clock())


class KeyedBuckets:
    """One bucket per key (a client IP), with a bounded, least-recently-used table."""

    __slots__ = ("_buckets", "_clock", "burst", "max_keys", "rate")

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _get(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def take(self, key: str) -> bool:
        """Take one of ``key``'s tokens if it has one."""
        now = self._clock()
        return _take(self._get(key, now), self.rate, self.burst, now)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` has a token again."""
        now = self._clock()
        return _retry_after(self._get(key, now), self.rate, self.burst, now)

    def __len__(self) -> int:
        return len(self._buckets)


def _refill(bucket: _Bucket, rate: float, burst: float, now: float) -> None:
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
    bucket.stamp = now


def _take(bucket: _Bucket, rate: float, burst: float, now: float) -> bool:
    _refill(bucket, rate, burst, now)
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        return True
    return False


def _retry_after(bucket: _Bucket, rate: float, burst: float, now: float) -> float:
    _refill(bucket, rate, burst, now)
    return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / rate
