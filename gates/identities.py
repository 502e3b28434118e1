"""Who may pass a community's gates, in Redis, so that a gate asking (api/gates.py) is answered
without SQL: per community one hash (``Keys.gate_identities``) with the registered persons
(``p:<person>``), their face ids (``f:<face id>``) and ID hashes (``h:<ID hash>``), and the
registered plates (``v:<plate>``, blacklisted ones with their note).

The projection is made from the registry facts of ``ingest/directory.py`` and written whole: staged
under a key of its own, then renamed onto the live key by a script that refuses facts older than
those already there (``_at``, the wall-clock ms at which the facts were read). So a worker whose
cached facts are a minute old never overwrites what a registry change wrote a moment ago.

Freshness: a registry change (an import, a grid worker's registration) re-projects at once; every
worker re-projects when it starts on a community, and its sweep compares the fingerprint (``_fp``)
of its facts, refreshed each minute, with the live one and re-projects when they differ (a change
made where no hook runs, a flushed Redis).
"""

from __future__ import annotations

import hashlib
import json
import secrets

from ingest.directory import CommunityFacts, Directory
from store.keys import Keys
from store.redis_server import RedisClient
from store.stores import Stores

AT, FINGERPRINT = "_at", "_fp"
STAGED_TTL_S = 60

# rename the staged projection onto the live one unless the live one was made from newer facts
SWAP_LUA = """
local at = redis.call('HGET', KEYS[1], '_at')
if at and tonumber(at) > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('PERSIST', KEYS[1])  -- RENAME keeps the staged key's TTL
return 1
"""


def identity_fields(facts: CommunityFacts) -> dict[str, str]:
    """The projection's fields for these registry facts (without ``_at`` and ``_fp``)."""
    fields: dict[str, str] = {}
    for person, doc in facts.people.items():
        fields[f"p:{person}"] = doc.get("id_hash") or ""
    for face, person in facts.face_ids.items():
        fields[f"f:{face}"] = facts.people.get(person, {}).get("id_hash") or ""
    for id_hash, person in facts.id_hashes.items():
        fields[f"h:{id_hash}"] = person
    for plate, vehicle in facts.vehicles.items():
        fields[f"v:{plate}"] = json.dumps(
            {"blacklisted": bool(vehicle["blacklisted"]), "note": vehicle.get("note") or ""}, ensure_ascii=False
        )
    return fields


def fingerprint(fields: dict[str, str]) -> str:
    """A digest of the projection's fields (equal facts, equal digest)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(fields):
        digest.update(f"{name}\x1f{fields[name]}\x1e".encode())
    return digest.hexdigest()


def write_identities(redis: RedisClient, keys: Keys, community: str, facts: CommunityFacts) -> bool:
    """Project these facts unless newer ones are live; True when written."""
    fields = identity_fields(facts)
    fields[AT], fields[FINGERPRINT] = str(facts.loaded_ms), fingerprint(fields)
    live, staged = keys.gate_identities(community), keys.gate_identities_staged(community, secrets.token_hex(6))
    pipe = redis.pipeline(transaction=False)
    pipe.hset(staged, mapping=fields)
    pipe.expire(staged, STAGED_TTL_S)
    pipe.execute()
    return bool(redis.register_script(SWAP_LUA)(keys=[live, staged], args=[facts.loaded_ms]))


def refresh_identities(redis: RedisClient, keys: Keys, community: str, facts: CommunityFacts) -> bool:
    """Re-project when these facts differ from the live projection and are newer (a worker's sweep):
    one HMGET when nothing changed; True when written."""
    live_at, live_fp = redis.hmget(keys.gate_identities(community), [AT, FINGERPRINT])
    if live_at is not None and int(live_at) >= facts.loaded_ms:
        return False
    if live_fp is not None and str(live_fp) == fingerprint(identity_fields(facts)):
        return False
    return write_identities(redis, keys, community, facts)


def project_identities(stores: Stores, community: str) -> None:
    """Re-project from the registry as it is now (after an import or a registration)."""
    write_identities(stores.redis, stores.keys, community, Directory(stores.sessions).facts(community))
