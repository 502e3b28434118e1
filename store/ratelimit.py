"""Fixed-window rate limits in Redis (shared by every web worker)."""

from __future__ import annotations

import time

from core.errors import SandtableError
from store.redis_server import RedisClient


class RateLimited(SandtableError):
    """Too many requests in the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


def hit(client: RedisClient, prefix: str, name: str, *, limit: int, window_s: int) -> int:
    """Count one request against name's window; RateLimited when over the limit."""
    now = time.time()
    window = int(now // window_s)
    key = f"{prefix}:rl:{name}:{window}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, window_s * 2)
    count = int(pipe.execute()[0])
    if count > limit:
        raise RateLimited(max(1, int((window + 1) * window_s - now) + 1))
    return count
