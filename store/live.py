"""Read API of the live state in Redis (projections written by the analytics workers).

Views and routes call these functions; none of them knows a Redis key.
"""

from __future__ import annotations

import json

from store.stores import Stores


def device_status(stores: Stores, community: str) -> dict[str, str]:
    """online / offline per device of the community that has reported at least once."""
    raw = stores.redis.hgetall(stores.keys.device_state(community))
    out: dict[str, str] = {}
    for device, text in raw.items():
        try:
            out[device] = "online" if json.loads(text).get("online") else "offline"
        except (ValueError, AttributeError):
            continue
    return out
