"""The Lua scripts of the live alerts, run on one community's keys (one hash slot): raise (open or
count, idempotent per token), transition, recount. ``alerts/live.py`` calls them."""

from __future__ import annotations

# KEYS: open (hash dedup → doc), index (hash id → dedup), feed (zset id → ms), version, counts
# ARGV: dedup, new id, new doc, now ms, now iso, token…
RAISE_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local doc
local created = '0'
if cur then doc = cjson.decode(cur) else doc = cjson.decode(ARGV[3]); created = '1' end
local tokens = doc['tokens'] or {}
local seen = {}
for _, t in ipairs(tokens) do seen[t] = true end
local added = 0
for i = 6, #ARGV do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    table.insert(tokens, ARGV[i])
    added = added + 1
  end
end
if added == 0 then return {doc['id'], '0', cur, '0'} end
while #tokens > 64 do table.remove(tokens, 1) end
doc['tokens'] = tokens
doc['last_token'] = ARGV[#ARGV]
if created == '1' then
  doc['count'] = added
else
  doc['count'] = doc['count'] + added
  doc['last_seen_at'] = ARGV[5]
  doc['updated_at'] = ARGV[5]
end
local enc = cjson.encode(doc)
redis.call('HSET', KEYS[1], ARGV[1], enc)
if created == '1' then
  redis.call('HSET', KEYS[2], doc['id'], ARGV[1])
  redis.call('HINCRBY', KEYS[5], 'sev:' .. doc['severity'], 1)
  redis.call('HINCRBY', KEYS[5], 'type:' .. doc['type'], 1)
end
redis.call('ZADD', KEYS[3], ARGV[4], doc['id'])
redis.call('INCR', KEYS[4])
return {doc['id'], created, enc, tostring(added)}
"""

# KEYS: open, index, feed, closed (hash id → doc), version, counts
# ARGV: id, new status, actor, note, now ms, now iso, expected status ('' = any), closing ('1'/'0')
TRANSITION_LUA = """
local dedup = redis.call('HGET', KEYS[2], ARGV[1])
if not dedup then return {'missing'} end
local cur = redis.call('HGET', KEYS[1], dedup)
if not cur then return {'missing'} end
local doc = cjson.decode(cur)
if ARGV[7] ~= '' and doc['status'] ~= ARGV[7] then return {'conflict', cur} end
doc['status'] = ARGV[2]
doc['updated_at'] = ARGV[6]
local step = {at = ARGV[6], status = ARGV[2], actor = ARGV[3], note = ARGV[4]}
table.insert(doc['timeline'], step)
local enc = cjson.encode(doc)
if ARGV[8] == '1' then
  redis.call('HDEL', KEYS[1], dedup)
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], enc)
  redis.call('HINCRBY', KEYS[6], 'sev:' .. doc['severity'], -1)
  redis.call('HINCRBY', KEYS[6], 'type:' .. doc['type'], -1)
else
  redis.call('HSET', KEYS[1], dedup, enc)
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('INCR', KEYS[5])
return {'ok', enc}
"""

# KEYS: open, counts — rebuilds the counts from the open alerts (restart-safe, atomic per community)
RECOUNT_LUA = """
local vals = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[2])
for _, v in ipairs(vals) do
  local doc = cjson.decode(v)
  redis.call('HINCRBY', KEYS[2], 'sev:' .. doc['severity'], 1)
  redis.call('HINCRBY', KEYS[2], 'type:' .. doc['type'], 1)
end
return #vals
"""
