"""Writes of one batch, coalesced: one ZADD/HSET per key instead of one per event."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class BatchWrites:
    """Collects a batch's Redis writes and sends them as few commands as possible."""

    def __init__(self) -> None:
        # (key, gt, xx, nx) → member → score (GT keeps the largest score of the batch)
        self._zadd: dict[tuple[str, bool, bool, bool], dict[str, float]] = defaultdict(dict)
        self._hset: dict[str, dict[str, str]] = defaultdict(dict)
        self._hdel: dict[str, set[str]] = defaultdict(set)
        self._lists: dict[str, tuple[list[str], int]] = {}
        self._zrem: dict[str, set[str]] = defaultdict(set)
        self._incr: dict[str, int] = defaultdict(int)
        self._geo: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)

    def zadd(
        self, key: str, member: str, score: float, *, gt: bool = False, xx: bool = False, nx: bool = False
    ) -> None:
        """ZADD (GT: only ever raise the score; XX: only update an existing member; NX: only add a new one)."""
        members = self._zadd[(key, gt, xx, nx)]
        if gt and member in members:
            members[member] = max(members[member], score)
        else:
            members[member] = score
        self._zrem[key].discard(member)

    def zrem(self, key: str, member: str) -> None:
        """ZREM."""
        for (k, _gt, _xx, _nx), members in self._zadd.items():
            if k == key:
                members.pop(member, None)
        self._zrem[key].add(member)

    def hset(self, key: str, field: str, value: str) -> None:
        """HSET (the last value of the batch wins)."""
        self._hset[key][field] = value
        self._hdel[key].discard(field)

    def hdel(self, key: str, field: str) -> None:
        """HDEL (a later HSET of the batch brings the field back)."""
        self._hset[key].pop(field, None)
        self._hdel[key].add(field)

    def push(self, key: str, value: str, keep: int) -> None:
        """LPUSH, keeping the newest `keep` items."""
        items, _ = self._lists.get(key, ([], keep))
        items.append(value)
        self._lists[key] = (items, keep)

    def geo(self, key: str, lon: float, lat: float, member: str) -> None:
        """GEOADD (the last position of the batch wins)."""
        self._geo[key][member] = (lon, lat)

    def incr(self, key: str) -> None:
        """INCR."""
        self._incr[key] += 1

    def send(self, pipe: Any) -> None:
        """Queue every write on the pipeline (the caller executes it)."""
        for key, gone in self._zrem.items():
            if gone:
                pipe.zrem(key, *gone)
        for (key, gt, xx, nx), scores in self._zadd.items():
            if scores:
                pipe.zadd(key, scores, gt=gt, xx=xx, nx=nx)
        for key, gone in self._hdel.items():
            if gone:
                pipe.hdel(key, *gone)
        for key, fields in self._hset.items():
            if fields:
                pipe.hset(key, mapping=fields)
        for key, (items, keep) in self._lists.items():
            pipe.lpush(key, *items)
            pipe.ltrim(key, 0, keep - 1)
        for key, places in self._geo.items():
            pipe.geoadd(key, [v for member, (lon, lat) in places.items() for v in (lon, lat, member)])
        for key, n in self._incr.items():
            pipe.incrby(key, n)
        self.__init__()  # type: ignore[misc]
