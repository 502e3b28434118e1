"""The shared rate limit is a sliding window: a burst across a window's boundary is still limited,
and the Retry-After it gives is when a request would pass again."""

from __future__ import annotations

import pytest

import store.ratelimit as ratelimit
from store.ratelimit import RateLimited, hit
from store.stores import Stores


class Clock:
    """The wall clock the limiter reads, set by the test (the clock is outside the system)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(6_000_000.0)  # a window's start for 60 s windows
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


@pytest.mark.also_on_cluster
def test_a_burst_across_the_boundary_of_a_window_passes_the_limit_once(stores: Stores, clock: Clock) -> None:
    prefix = stores.keys.prefix
    clock.now += 55  # the last 5 s of a window: 6 logins pass
    assert [hit(stores.redis, prefix, "login:10.0.0.9", limit=6, window_s=60) for _ in range(6)] == [1, 2, 3, 4, 5, 6]
    clock.now += 10  # 5 s into the next window: the 6 still count, almost all of them
    with pytest.raises(RateLimited) as refused:
        hit(stores.redis, prefix, "login:10.0.0.9", limit=6, window_s=60)
    # this window ends in 55 s; then the previous 6 slide out until one more fits
    assert 55 < refused.value.retry_after <= 55 + 60
    # another address is not affected
    assert hit(stores.redis, prefix, "login:10.0.0.10", limit=6, window_s=60) == 1
    clock.now += refused.value.retry_after
    assert hit(stores.redis, prefix, "login:10.0.0.9", limit=6, window_s=60) <= 6


def test_a_quiet_address_starts_afresh_after_two_windows(stores: Stores, clock: Clock) -> None:
    prefix = stores.keys.prefix
    for _ in range(3):
        hit(stores.redis, prefix, "visit:10.0.0.9", limit=3, window_s=60)
    with pytest.raises(RateLimited):
        hit(stores.redis, prefix, "visit:10.0.0.9", limit=3, window_s=60)
    clock.now += 120
    assert hit(stores.redis, prefix, "visit:10.0.0.9", limit=3, window_s=60) == 1
