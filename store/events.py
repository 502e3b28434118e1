"""The event log: one Redis stream per community, a dead-letter stream, a consumer group.

Written for Redis 6.2 (no XADD idempotency, no ACKED trimming): deduplication is a
``SET NX EX`` per producer event id inside the same Lua script as the XADD (atomic, one round
trip per batch, all keys in the community's hash slot); trimming uses XTRIM MINID below the
oldest entry that is pending or not yet delivered, so an unacknowledged entry is never dropped.

On a Redis Cluster one XREADGROUP may only name streams of one hash slot, so the workers read
the communities slot group by slot group (``read``): non-blocking reads pipelined per primary,
then, when every stream was empty, one short blocking read on one slot group (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from core.errors import SandtableError
from store.keys import Keys
from store.redis_server import STORE_ERRORS, RedisClient, is_cluster, queue_script

log = logging.getLogger(__name__)
GROUP = "workers"  # the analytics workers' consumer group
ARCHIVE_GROUP = "archive"  # the archiver's consumer group (memory/archive.py): every entry, read a second time
SLOT_GROUPS_PER_PIPELINE = 512  # a cluster read pass sends at most this many XREADGROUPs per round of pipelines
# replies of a slot that is moving or has moved (the parser strips the MOVED/ASK/... prefix from the text)
_REDIRECTS = (redis.exceptions.AskError, redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError)
encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode
# An append is on disk this long after it was acknowledged: the AOF is fsynced every second, and
# Redis postpones an fsync by up to 2 s while the previous one is still running (then it blocks
# writes). Until then a power cut can lose it: the process that appended it checks, once this old,
# that it is still there (``verify_durable``).
DURABLE_AFTER_S = 5.0
UNVERIFIABLE_AFTER_S = 600.0  # Redis away longer than this: the appends are no longer checked

# KEYS[1] stream, KEYS[2..] the seen-keys of the events that have an id (one hash slot).
# ARGV[1] ttl, ARGV[2] n, ARGV[3] backlog limit, ARGV[4] community, then per event: has_id, payload.
APPEND_LUA = """
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('XLEN', KEYS[1]) >= limit then
  return redis.error_reply('BACKLOG stream is over its backlog limit')
end
local k = 2
local duplicates = {}
for i = 1, n do
  local has_id = ARGV[3 + 2 * i]
  local fresh = true
  if has_id == '1' then
    if not redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then fresh = false end
    k = k + 1
  end
  if fresh then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[4 + 2 * i])
  else
    duplicates[#duplicates + 1] = i - 1
  end
end
return duplicates
"""


# KEYS[1] the dead-letter stream, KEYS[2] its total counter, KEYS[3] its truncated counter, KEYS[4..]
# the once-keys of the items that have a token (one hash slot). ARGV[1] maxlen, ARGV[2] ttl, ARGV[3] n,
# then per item: has_token, truncated, payload. An item whose token was dead-lettered already (a
# batch redelivered after a crash between its dead letters and its XACK, a rejected batch sent
# again) is not written twice. Returns how many were written.
DEAD_LETTER_LUA = """
local maxlen = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local k = 4
local written, truncated = 0, 0
for i = 1, n do
  local fresh = true
  if ARGV[1 + 3 * i] == '1' then
    if not redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then fresh = false end
    k = k + 1
  end
  if fresh then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'd', ARGV[3 + 3 * i])
    written = written + 1
    if ARGV[2 + 3 * i] == '1' then truncated = truncated + 1 end
  end
end
if written > 0 then redis.call('INCRBY', KEYS[2], written) end
if truncated > 0 then redis.call('INCRBY', KEYS[3], truncated) end
return written
"""


def dead_letter_token(item: dict[str, Any]) -> str | None:
    """What makes a dead letter the same one again: the stream entry of a poison entry, else the
    producer's id of a rejected event (with its position in the batch); None when it has neither."""
    if item.get("entry"):
        return f"e:{item['entry']}"
    raw = item.get("raw")
    if isinstance(raw, dict) and isinstance(raw.get("id"), str | int) and str(raw["id"]):
        return f"i:{str(raw['id'])[:128]}:{item.get('index', '')}"
    return None


# A dead-letter entry is at most max_bytes of JSON: an item that does not fit keeps its context (reason,
# index or entry id, time), the event's small fields (cut to SMALL_FIELD_BYTES each), and the beginning
# of the JSON text of the rest (its data) as ``raw_head``, with ``truncated`` and ``raw_bytes`` (the
# size the event had). The stream's length is capped at budget / max_bytes entries, so it holds about
# the budget at most, whatever producers send (issue #16).
DEAD_SMALL_FIELDS = ("id", "type", "device", "ts")
SMALL_FIELD_BYTES = 160
REASON_BYTES = 512
MIN_DEAD_LETTER_BYTES = 2048  # room for the context and small fields at their caps (settings' lower bound)


def dead_letter_maxlen(max_bytes: int, budget_mb: int) -> int:
    """The dead-letter stream's length cap: budget_mb of entries of at most max_bytes each."""
    return max(1, budget_mb * 1024 * 1024 // max_bytes)


def _cut(text: str, limit: int) -> str:
    """The longest prefix of text whose JSON string (quotes and escapes included) has at most limit bytes."""
    if len(encode(text)) <= limit:
        return text
    low, high = 0, min(len(text), limit)  # every character costs at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if len(encode(text[:middle])) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _small(value: Any) -> Any:
    """A small field of an event as kept in a truncated entry: a scalar that fits, else its text cut."""
    if isinstance(value, str):
        return _cut(value, SMALL_FIELD_BYTES)
    text = encode(value)
    return value if len(text) <= SMALL_FIELD_BYTES else _cut(text.decode(), SMALL_FIELD_BYTES)


def dead_letter_entry(item: dict[str, Any], max_bytes: int) -> tuple[bytes, bool]:
    """The JSON stored for a dead letter (at most max_bytes), and whether it had to be truncated."""
    whole = encode(item)
    if len(whole) <= max_bytes:
        return whole, False
    raw = item.get("raw")
    kept: dict[str, Any] = {k: _small(v) for k, v in item.items() if k not in ("raw", "reason")}
    kept["reason"] = _cut(str(item.get("reason", "")), REASON_BYTES)
    if isinstance(raw, dict):
        kept["raw"] = {k: _small(raw[k]) for k in DEAD_SMALL_FIELDS if k in raw}
        rest = encode({k: v for k, v in raw.items() if k not in DEAD_SMALL_FIELDS}).decode()
    else:
        rest = raw if isinstance(raw, str) else encode(raw).decode()
    kept["raw_bytes"] = len(encode(raw))
    kept["truncated"] = True
    kept["raw_head"] = ""
    room = max_bytes - len(encode(kept)) + 2  # the empty head's two quotes are counted already
    kept["raw_head"] = _cut(rest, max(room, 2))
    return encode(kept), True


# KEYS[1] a stream. ARGV[1] a group's last-delivered id, ARGV[2] the most entries counted, ARGV[3] the
# group, ARGV[4] its pending count. Returns {entries not delivered to the group yet (at most ARGV[2]),
# the id of the group's oldest unacknowledged entry, or false}: two values cross the network, not the
# entries. Redis 7 tells the first itself (XINFO GROUPS ``lag``): then ARGV[2] is 1.
BEHIND_LUA = """
local undelivered = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local oldest = false
if tonumber(ARGV[4]) > 0 then
  oldest = redis.call('XPENDING', KEYS[1], ARGV[3])[2]
elseif #undelivered > 0 then
  oldest = undelivered[1][1]
end
return {#undelivered, oldest}
"""
LAG_COUNT_CAP = 10_000  # Redis 6.2: undelivered entries are counted up to this many per stream and group


@dataclass(frozen=True)
class GroupLag:
    """How far a consumer group is behind its stream."""

    entries: int  # pending (delivered, not acknowledged) plus not delivered yet
    oldest_ms: int | None  # the time of the oldest of them (its entry id's), None when there is none
    capped: bool  # Redis 6.2 and more undelivered entries than LAG_COUNT_CAP: entries is a lower bound


@dataclass(frozen=True)
class StreamFigures:
    """A community's stream as the operators watch it (``GET /metrics``)."""

    length: int
    groups: dict[str, GroupLag]
    dead_letters: int  # kept in the dead-letter stream now
    dead_letters_written: int  # ever written (some pushed out by the stream's cap since)
    lost: int  # acknowledged events lost when Redis restarted without them (``drops``)


class Backlogged(SandtableError):
    """The community's stream is over its backlog limit: producers should retry later."""


@dataclass
class StreamEntry:
    """One entry read from a community stream (``doc`` is None when the entry cannot be decoded)."""

    community: str
    entry_id: str
    doc: dict[str, Any] | None
    raw: str = ""


def entry_of(community: str, entry_id: str, fields: dict[str, Any]) -> StreamEntry:
    """A stream entry, decoded when possible (a poison entry keeps its raw text for the dead letters)."""
    raw = str(fields.get("e", ""))
    try:
        doc = decode(raw)
    except msgspec.DecodeError:
        doc = None
    return StreamEntry(community, entry_id, doc if isinstance(doc, dict) else None, raw)


class EventLog:
    """Appends to, reads from and trims the per-community streams."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        *,
        dedup_hours: int = 24,
        backlog_limit: int = 0,
        cluster_block_ms: int = 100,
        dead_letter_max_bytes: int = 4096,
        dead_letter_budget_mb: int = 64,
        group: str = GROUP,
    ) -> None:
        self.client = client
        self.group = group  # the consumer group this log reads, acknowledges and claims in
        self.keys = keys
        self.dedup_s = dedup_hours * 3600
        self.backlog_limit = backlog_limit
        self.dead_max_bytes = dead_letter_max_bytes
        self.dead_maxlen = dead_letter_maxlen(dead_letter_max_bytes, dead_letter_budget_mb)
        self.cluster_block_ms = cluster_block_ms
        self._append = client.register_script(APPEND_LUA)
        self._dead_letter = client.register_script(DEAD_LETTER_LUA)
        self._behind = client.register_script(BEHIND_LUA)
        self._cluster = is_cluster(client)
        self._slot_groups: tuple[tuple[str, ...], list[list[str]]] = ((), [])
        self._turn = 0  # which slot group a cluster read starts with (every group gets to go first)
        # appends not yet known to be on disk: (appended at, community, the seen-key of one of its
        # events, events appended); deque appends and pops are atomic across a process's threads
        self._unverified: deque[tuple[float, str, str, int]] = deque()
        self._verifying = threading.Lock()

    # --- writing ----------------------------------------------------------------------------
    def append(self, community: str, events: list[tuple[str | None, bytes]]) -> list[int]:
        """Append (event id, payload) pairs; returns the indexes of the duplicates (not appended)."""
        self.verify_durable()
        if not events:
            return []
        keys = [self.keys.events(community)]
        args: list[Any] = [self.dedup_s, len(events), self.backlog_limit, community]
        for event_id, payload in events:
            if event_id is not None:
                keys.append(self.keys.seen(community, event_id))
            args.extend(("1" if event_id is not None else "0", payload))
        try:
            duplicates = self._append(keys=keys, args=args)
        except redis.ResponseError as err:
            if "BACKLOG" in str(err):
                raise Backlogged(f"community {community}: the event backlog is full; retry later") from None
            raise
        self.client.sadd(self.keys.communities, community)  # cheap, and survives a flush of Redis
        skipped = {int(i) for i in duplicates}
        fresh = [event_id for i, (event_id, _) in enumerate(events) if event_id is not None and i not in skipped]
        if fresh:  # the script's writes reach the AOF together: one of its seen-keys stands for all of them
            self._unverified.append(
                (time.monotonic(), community, self.keys.seen(community, fresh[-1]), len(events) - len(skipped))
            )
        return sorted(skipped)

    def verify_durable(self) -> dict[str, int]:
        """Check the appends acknowledged more than DURABLE_AFTER_S ago: each is still in Redis, unless
        Redis was killed before its AOF reached the disk (or, on a cluster, a primary died before
        its replica had it). Lost ones are counted per community (``drops``, ``lost_on_restart``)
        and logged: the system says what it dropped. Returns the counts found lost now."""
        if not self._unverified or time.monotonic() - self._unverified[0][0] < DURABLE_AFTER_S:
            return {}
        if not self._verifying.acquire(blocking=False):
            return {}
        try:
            now = time.monotonic()
            due: list[tuple[float, str, str, int]] = []
            while self._unverified and now - self._unverified[0][0] >= DURABLE_AFTER_S:
                due.append(self._unverified.popleft())
            try:
                pipe = self.client.pipeline(transaction=False)
                for _, _, seen, _ in due:
                    pipe.exists(seen)
                found = pipe.execute()
            except STORE_ERRORS:  # Redis is away: check them when it is back
                self._unverified.extendleft(reversed([d for d in due if now - d[0] < UNVERIFIABLE_AFTER_S]))
                return {}
            lost: Counter[str] = Counter()
            for (_, community, _, count), there in zip(due, found, strict=True):
                if not there:
                    lost[community] += count
            for community, count in lost.items():
                log.error(
                    "community %s: %d acknowledged events were lost: Redis restarted without them "
                    "(the AOF fsync window, or a cluster failover before the replica had them)",
                    community,
                    count,
                )
                with contextlib.suppress(*STORE_ERRORS):
                    self.client.hincrby(self.keys.drops(community), "lost_on_restart", count)
            return dict(lost)
        finally:
            self._verifying.release()

    def drops(self, community: str) -> dict[str, int]:
        """What the system had to drop, by reason: acknowledged events lost when Redis restarted
        (``lost_on_restart``), dead letters pushed out by the stream's cap (``dead_letters_over_cap``)
        and dead letters kept truncated (``dead_letters_truncated``)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.drops(community))
        pipe.get(self.keys.dead_total(community))
        pipe.xlen(self.keys.dead(community))
        pipe.get(self.keys.dead_truncated(community))
        recorded, total, kept, truncated = pipe.execute()
        return {
            "lost_on_restart": int(recorded.get("lost_on_restart", 0)),
            "dead_letters_over_cap": max(0, int(total or 0) - int(kept or 0)),
            "dead_letters_truncated": int(truncated or 0),
        }

    def dead_letter(self, community: str, items: list[dict[str, Any]]) -> None:
        """Keep rejected or poison events with their reason: each entry at most dead_letter_max_bytes
        (truncated beyond, and counted), the stream at most its budget (MAXLEN ~)."""
        if not items:
            return
        keys = [self.keys.dead(community), self.keys.dead_total(community), self.keys.dead_truncated(community)]
        args: list[Any] = [self.dead_maxlen, self.dedup_s, len(items)]
        for item in items:
            entry, cut = dead_letter_entry(item, self.dead_max_bytes)
            token = dead_letter_token(item)
            if token is not None:
                keys.append(self.keys.dead_once(community, token))
            args.extend(("1" if token is not None else "0", "1" if cut else "0", entry))
        self._dead_letter(keys=keys, args=args)
        self.client.sadd(self.keys.communities, community)  # a gateway that sends only rejects is listed too (doctor)

    def dead_letters(self, community: str, count: int = 100) -> list[dict[str, Any]]:
        """The newest dead-letter entries, newest first."""
        rows = self.client.xrevrange(self.keys.dead(community), count=count)
        return [{"entry": entry_id, **decode(fields["d"])} for entry_id, fields in rows]

    def dead_letter_counts(self, community: str) -> dict[str, int]:
        """Dead-letter entries kept now, and how many entries were ever stored truncated."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.dead(community))
        pipe.get(self.keys.dead_truncated(community))
        kept, truncated = pipe.execute()
        return {"kept": int(kept or 0), "truncated": int(truncated or 0)}

    # --- reading ----------------------------------------------------------------------------
    def communities(self) -> list[str]:
        """The communities that have a stream."""
        return sorted(self.client.smembers(self.keys.communities))

    def ensure_group(self, community: str) -> None:
        """Create the consumer group (idempotent: only BUSYGROUP is swallowed)."""
        try:
            self.client.xgroup_create(self.keys.events(community), self.group, id="0", mkstream=True)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    def read(self, communities: list[str], consumer: str, *, count: int, block_ms: int | None) -> list[StreamEntry]:
        """New entries for this consumer from the communities' streams (at most count per stream)."""
        if not communities:
            return []
        if self._cluster:
            return self._read_cluster(communities, consumer, count=count, block_ms=block_ms)
        try:
            reply = self.client.xreadgroup(
                self.group, consumer, self._streams(communities), count=count, block=block_ms
            )
        except redis.ResponseError as err:
            if "NOGROUP" in str(err):
                for c in communities:
                    self.ensure_group(c)
                return []
            raise
        return self._entries(reply)

    def _streams(self, communities: list[str]) -> dict[str, str]:
        return {self.keys.events(c): ">" for c in communities}

    def slot_groups(self, communities: list[str]) -> list[list[str]]:
        """The communities grouped by the hash slot of their keys (one group each, bar hash-tag collisions)."""
        if self._slot_groups[0] != tuple(communities):
            by_slot: dict[int, list[str]] = {}
            for community in communities:
                by_slot.setdefault(self.client.keyslot(self.keys.events(community)), []).append(community)
            self._slot_groups = (tuple(communities), list(by_slot.values()))
        return self._slot_groups[1]

    def _read_cluster(
        self, communities: list[str], consumer: str, *, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """A pass of non-blocking reads, one XREADGROUP per slot group, sent to each primary in one
        plain pipeline (redis-py's cluster pipeline costs ten times more client time per command);
        a pass stops once it holds count entries, and the next starts one group further on, so no
        community waits behind a busy one. When the whole pass found nothing, one blocking read on a
        single slot group (the next in turn) waits at most cluster_block_ms: new entries elsewhere
        are picked up by the following pass."""
        groups = self.slot_groups(communities)
        start = self._turn % len(groups)
        self._turn += 1
        ordered = groups[start:] + groups[:start]
        out: list[StreamEntry] = []
        for first in range(0, len(ordered), SLOT_GROUPS_PER_PIPELINE):
            out.extend(self._read_slot_groups(ordered[first : first + SLOT_GROUPS_PER_PIPELINE], consumer, count))
            if len(out) >= count:
                return out
        if out or not block_ms:
            return out
        return self._read_one(ordered[0], consumer, count, min(block_ms, self.cluster_block_ms))

    def _read_slot_groups(self, groups: list[list[str]], consumer: str, count: int) -> list[StreamEntry]:
        """Non-blocking reads of slot groups, one pipeline per primary that holds some of them."""
        by_node: dict[str, tuple[Any, list[list[str]]]] = {}
        for group in groups:
            node = self.client.get_node_from_key(self.keys.events(group[0]))
            by_node.setdefault(node.name, (node, []))[1].append(group)
        out: list[StreamEntry] = []
        redirected: list[list[str]] = []
        for node, node_groups in by_node.values():
            pipe = self.client.get_redis_connection(node).pipeline(transaction=False)
            for group in node_groups:
                pipe.xreadgroup(self.group, consumer, self._streams(group), count=count)
            try:
                replies = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError):
                # a primary is gone (a failover?): learn the topology anew for the worker's retry
                with contextlib.suppress(*STORE_ERRORS):
                    self.client.nodes_manager.initialize()
                raise
            for group, reply in zip(node_groups, replies, strict=True):
                if isinstance(reply, _REDIRECTS):
                    redirected.append(group)  # the slot is moving or has moved: the cluster client follows it
                elif isinstance(reply, redis.ResponseError) and "NOGROUP" in str(reply):
                    for c in group:
                        self.ensure_group(c)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    out.extend(self._entries(reply))
        for group in redirected:
            out.extend(self._read_one(group, consumer, count, None))
        return out

    def _read_one(self, group: list[str], consumer: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """One XREADGROUP on the streams of one slot group, through the cluster client (redirections followed)."""
        try:
            reply = self.client.xreadgroup(self.group, consumer, self._streams(group), count=count, block=block_ms)
        except redis.ResponseError as err:
            if "NOGROUP" not in str(err):
                raise
            for c in group:
                self.ensure_group(c)
            return []
        return self._entries(reply)

    def _entries(self, reply: Any) -> list[StreamEntry]:
        out: list[StreamEntry] = []
        for stream, entries in reply or []:
            community = self.community_of(stream)
            for entry_id, fields in entries:
                if fields is None:  # deleted while pending
                    continue
                out.append(entry_of(community, entry_id, fields))
        return out

    def community_of(self, stream_key: str) -> str:
        """The community of a stream key."""
        return stream_key.split("{", 1)[1].split("}", 1)[0]

    def ack(self, community: str, entry_ids: list[str]) -> None:
        """Acknowledge processed entries."""
        if entry_ids:
            self.client.xack(self.keys.events(community), self.group, *entry_ids)

    def claim_stale(
        self, community: str, consumer: str, min_idle_ms: int, count: int = 500
    ) -> list[tuple[StreamEntry, int]]:
        """Take over entries idle longer than min_idle_ms (crashed consumers), following the
        XAUTOCLAIM cursor to the end; returns each entry with its delivery count."""
        stream = self.keys.events(community)
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        while True:
            reply = self.client.xautoclaim(stream, self.group, consumer, min_idle_ms, start_id=cursor, count=count)
            cursor, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields is not None:
                    claimed.append(entry_of(community, entry_id, fields))
            if cursor in ("0-0", b"0-0"):
                break
        if not claimed:
            return []
        counts: dict[str, int] = {}
        first, last = claimed[0].entry_id, claimed[-1].entry_id
        for row in self.client.xpending_range(
            stream, self.group, min=first, max=last, count=len(claimed) + 100, consumername=consumer
        ):
            counts[row["message_id"]] = int(row["times_delivered"])
        return [(e, counts.get(e.entry_id, 1)) for e in claimed]

    def lag(self, community: str) -> dict[str, int]:
        """Entries not yet delivered and entries pending acknowledgement."""
        stream = self.keys.events(community)
        try:
            groups = self.client.xinfo_groups(stream)
        except redis.ResponseError:
            return {"pending": 0, "undelivered": int(self.client.xlen(stream))}
        group = next((g for g in groups if g["name"] == self.group), None)
        if group is None:
            return {"pending": 0, "undelivered": int(self.client.xlen(stream))}
        last = group["last-delivered-id"]
        undelivered = len(self.client.xrange(stream, min=f"({last}", count=100_000)) if last else 0
        return {"pending": int(group["pending"]), "undelivered": undelivered}

    def figures(
        self, communities: list[str], groups: tuple[str, ...] = (GROUP, ARCHIVE_GROUP)
    ) -> dict[str, StreamFigures]:
        """Every community's stream length, each group's lag (entries and the oldest one's time),
        dead letters and lost events, in two pipelined round trips whatever the number of
        communities (read at every scrape of ``GET /metrics``)."""
        pipe = self.client.pipeline(transaction=False)
        for community in communities:
            pipe.xlen(self.keys.events(community))
            pipe.xinfo_groups(self.keys.events(community))  # an error when there is no stream yet
            pipe.xlen(self.keys.dead(community))
            pipe.get(self.keys.dead_total(community))
            pipe.hget(self.keys.drops(community), "lost_on_restart")
        first = pipe.execute(raise_on_error=False)
        pipe = self.client.pipeline(transaction=False)
        asked: list[tuple[str, str, int, int | None]] = []
        for index, community in enumerate(communities):
            info = first[5 * index + 1]
            found = {str(g["name"]): g for g in info} if isinstance(info, list) else {}
            for group in groups:
                row = found.get(group)
                told = row.get("lag") if row is not None else None  # Redis 7 knows it; None on 6.2
                known = told if isinstance(told, int) else None
                pending = int(row["pending"]) if row is not None else 0
                last = str(row["last-delivered-id"]) if row is not None else "0-0"
                cap = 1 if known is not None else LAG_COUNT_CAP
                queue_script(pipe, self._behind, [self.keys.events(community)], [last, cap, group, pending])
                asked.append((community, group, pending, known))
        behind = iter(pipe.execute() if asked else [])
        lags: dict[str, dict[str, GroupLag]] = {c: {} for c in communities}
        for (community, group, pending, known), (counted, oldest) in zip(asked, behind, strict=True):
            undelivered = known if known is not None else int(counted)
            capped = known is None and int(counted) >= LAG_COUNT_CAP
            oldest_ms = _entry_key(str(oldest))[0] if oldest else None
            lags[community][group] = GroupLag(pending + undelivered, oldest_ms, capped)
        out = {}
        for index, community in enumerate(communities):
            length, _, kept, total, lost = first[5 * index : 5 * index + 5]
            for value in (length, kept, total, lost):
                if isinstance(value, Exception):
                    raise value
            out[community] = StreamFigures(int(length), lags[community], int(kept), int(total or 0), int(lost or 0))
        return out

    def oldest_unacked(self, community: str) -> StreamEntry | None:
        """The group's oldest entry not acknowledged yet (pending with some consumer, or not delivered
        yet), or None when the group has worked off the whole stream. Two or three cheap commands:
        XINFO GROUPS, then XPENDING's summary and one XRANGE of one entry."""
        stream = self.keys.events(community)
        try:
            groups = self.client.xinfo_groups(stream)
        except redis.ResponseError:
            return None  # no stream: nothing to work off
        group = next((g for g in groups if g["name"] == self.group), None)
        if group is not None and int(group["pending"]):
            first = str(self.client.xpending(stream, self.group)["min"])
            rows = self.client.xrange(stream, min=first, max=first, count=1)
        else:
            after = f"({group['last-delivered-id']}" if group is not None else "-"
            rows = self.client.xrange(stream, min=after, max="+", count=1)
        for entry_id, fields in rows:
            return entry_of(community, entry_id, fields or {})
        return None

    def caught_up(self, community: str) -> bool:
        """True when every entry of the stream has been delivered and acknowledged."""
        stream = self.keys.events(community)
        try:
            info = self.client.xinfo_stream(stream)
            groups = self.client.xinfo_groups(stream)
        except redis.ResponseError:
            return True  # no stream: nothing to catch up with
        group = next((g for g in groups if g["name"] == self.group), None)
        if group is None:
            return int(info["length"]) == 0
        return int(group["pending"]) == 0 and str(group["last-delivered-id"]) == str(info["last-generated-id"])

    def trim(self, community: str, retain_ms: int, maxlen: int | None = None) -> int:
        """Drop acknowledged entries older than retain_ms, or beyond about maxlen entries (a soft cap:
        the entry at that position is estimated from the stream's first and last ids); never a pending
        or undelivered one."""
        stream = self.keys.events(community)
        try:
            groups = self.client.xinfo_groups(stream)
        except redis.ResponseError:
            return 0
        floor = f"{int(time.time() * 1000) - retain_ms}-0"
        if maxlen is not None:
            info = self.client.xinfo_stream(stream)
            length = int(info["length"])
            if length > maxlen and info.get("first-entry") and info.get("last-entry"):
                oldest, newest = _entry_key(info["first-entry"][0])[0], _entry_key(info["last-entry"][0])[0]
                capped = f"{oldest + (newest - oldest) * (length - maxlen) // length}-0"
                floor = max(floor, capped, key=_entry_key)
        for group in groups:
            last = str(group["last-delivered-id"])
            floor = min(floor, last, key=_entry_key)
            if int(group["pending"]):
                summary = self.client.xpending(stream, group["name"])
                if summary and summary.get("min"):
                    floor = min(floor, str(summary["min"]), key=_entry_key)
        if not groups:
            return 0
        trimmed: int = self.client.execute_command("XTRIM", stream, "MINID", "~", floor)
        return trimmed


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
