"""Writes of one batch, coalesced: one ZADD/HSET per key instead of one per event, and the batch's
list pushes (household and gate logs, guard trails) as one script call instead of two commands a list."""

from __future__ import annotations

from typing import Any

# KEYS: the lists; ARGV: for each list, how many items it keeps, how many items follow, the items
# (oldest first: LPUSH leaves the newest at the head), then LTRIM to what it keeps
PUSH_LUA = """
local i = 1
for k = 1, #KEYS do
  local keep = tonumber(ARGV[i])
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  local first = i
  while first < i + n do
    local last = math.min(first + 999, i + n - 1)
    redis.call('LPUSH', KEYS[k], unpack(ARGV, first, last))
    first = last + 1
  end
  redis.call('LTRIM', KEYS[k], 0, keep - 1)
  i = i + n
end
return #KEYS
"""


class BatchWrites:
    """Collects a batch's Redis writes and sends them as few commands as possible."""

    def __init__(self) -> None:
        # key → (gt, xx, nx) → member → score (GT keeps the largest score of the batch)
        self._zadd: dict[str, dict[tuple[bool, bool, bool], dict[str, float]]] = {}
        self._hset: dict[str, dict[str, str]] = {}
        self._hdel: dict[str, set[str]] = {}
        self._lists: dict[str, tuple[list[str], int]] = {}
        self._zrem: dict[str, set[str]] = {}
        self._incr: dict[str, int] = {}
        self._geo: dict[str, dict[str, tuple[float, float]]] = {}

    def zadd(
        self, key: str, member: str, score: float, *, gt: bool = False, xx: bool = False, nx: bool = False
    ) -> None:
        """ZADD (GT: only ever raise the score; XX: only update an existing member; NX: only add a new one)."""
        by_flags = self._zadd.get(key)
        if by_flags is None:
            by_flags = self._zadd[key] = {}
        members = by_flags.get((gt, xx, nx))
        if members is None:
            members = by_flags[(gt, xx, nx)] = {}
        if gt:
            old = members.get(member)
            members[member] = score if old is None or score > old else old
        else:
            members[member] = score
        if self._zrem:
            gone = self._zrem.get(key)
            if gone:
                gone.discard(member)

    def zrem(self, key: str, member: str) -> None:
        """ZREM."""
        for members in self._zadd.get(key, {}).values():
            members.pop(member, None)
        self._zrem.setdefault(key, set()).add(member)

    def hset(self, key: str, field: str, value: str) -> None:
        """HSET (the last value of the batch wins)."""
        fields = self._hset.get(key)
        if fields is None:
            fields = self._hset[key] = {}
        fields[field] = value
        if self._hdel:
            gone = self._hdel.get(key)
            if gone:
                gone.discard(field)

    def hdel(self, key: str, field: str) -> None:
        """HDEL (a later HSET of the batch brings the field back)."""
        fields = self._hset.get(key)
        if fields:
            fields.pop(field, None)
        self._hdel.setdefault(key, set()).add(field)

    def push(self, key: str, value: str, keep: int) -> None:
        """LPUSH, keeping the newest `keep` items."""
        held = self._lists.get(key)
        if held is None:
            self._lists[key] = ([value], keep)
        else:
            held[0].append(value)

    def geo(self, key: str, lon: float, lat: float, member: str) -> None:
        """GEOADD (the last position of the batch wins)."""
        self._geo.setdefault(key, {})[member] = (lon, lat)

    def incr(self, key: str) -> None:
        """INCR."""
        self._incr[key] = self._incr.get(key, 0) + 1

    def send(self, pipe: Any) -> None:
        """Queue every write on the pipeline (the caller executes it). Two lists or more go out as
        one EVAL of ``PUSH_LUA`` (its body, which the server caches by its SHA1: no SCRIPT EXISTS
        round trip, and a cluster pipeline takes it); every key of a batch is one community's, so
        one hash slot."""
        for key, gone in self._zrem.items():
            if gone:
                pipe.zrem(key, *gone)
        for key, by_flags in self._zadd.items():
            for (gt, xx, nx), scores in by_flags.items():
                if scores:
                    pipe.zadd(key, scores, gt=gt, xx=xx, nx=nx)
        for key, gone in self._hdel.items():
            if gone:
                pipe.hdel(key, *gone)
        for key, fields in self._hset.items():
            if fields:
                pipe.hset(key, mapping=fields)
        if len(self._lists) > 1:
            args: list[Any] = []
            for items, keep in self._lists.values():
                newest = items[-keep:]  # what the trim would keep of this batch's items
                args += [keep, len(newest), *newest]
            pipe.execute_command("EVAL", PUSH_LUA, len(self._lists), *self._lists, *args)
        else:
            for key, (items, keep) in self._lists.items():
                pipe.lpush(key, *items[-keep:])
                pipe.ltrim(key, 0, keep - 1)
        for key, places in self._geo.items():
            pipe.geoadd(key, [v for member, (lon, lat) in places.items() for v in (lon, lat, member)])
        for key, n in self._incr.items():
            pipe.incrby(key, n)
        self.__init__()  # type: ignore[misc]
