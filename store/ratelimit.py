"""Rate limits in Redis (shared by every web worker).

A sliding window, estimated from two fixed windows' counts: the current one, plus the previous one
weighted by how much of it the sliding window still covers. A burst across a window's boundary
cannot pass twice the limit, as it can with fixed windows."""

from __future__ import annotations

import math
import time

from core.errors import SandtableError
from store.keys import Keys
from store.redis_server import RedisClient


class RateLimited(SandtableError):
    """Too many requests in the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


def hit(client: RedisClient, prefix: str, name: str, *, limit: int, window_s: int) -> int:
    """Count one request against name's sliding window; RateLimited when over the limit."""
    now = time.time()
    window = int(now // window_s)
    covered = 1.0 - (now / window_s - window)  # the share of the previous window still inside
    key = f"{prefix}:rl:{name}:{window}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, window_s * 2)
    pipe.get(f"{prefix}:rl:{name}:{window - 1}")
    current, _, previous = pipe.execute()
    count = int(current) + int(previous or 0) * covered
    if count > limit:
        # the earliest moment the window's count falls back under the limit: after this window
        # ends, once enough of it has slid out
        sliding_out = window_s * max(0.0, 1.0 - (limit - 1) / int(current))
        raise RateLimited(max(1, int((window + 1) * window_s - now + sliding_out) + 1))
    return math.ceil(count)


def count_denial(client: RedisClient, keys: Keys, address: str, *, window_s: int, now: float | None = None) -> int:
    """Count one anonymous denial from address in its window; the count so far (1 for the first)."""
    now = time.time() if now is None else now
    window = int(now // window_s)
    key = keys.anon_denials(address, window)
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, 86_400)  # long enough for a later flush to find it
    pipe.zadd(keys.anon_denials_open, {f"{address}|{window}": (window + 1) * window_s}, nx=True)
    return int(pipe.execute()[0])


def closed_denials(
    client: RedisClient, keys: Keys, *, window_s: int, now: float | None = None, limit: int = 500
) -> list[tuple[str, float, int]]:
    """Take the counts of the windows that have ended: (address, window start s, count) each, once
    (two web workers flushing together: ZREM decides which one takes a window)."""
    now = time.time() if now is None else now
    out: list[tuple[str, float, int]] = []
    for raw in client.zrangebyscore(keys.anon_denials_open, "-inf", now, start=0, num=limit):
        member = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not client.zrem(keys.anon_denials_open, member):
            continue  # another process took it
        address, _, window = member.rpartition("|")
        count = client.getdel(keys.anon_denials(address, int(window)))
        out.append((address, int(window) * window_s, int(count or 0)))
    return out
