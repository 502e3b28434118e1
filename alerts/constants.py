"""What alerts there are: the types the rules raise, the severities, and the alerts that reveal
the wanted list."""

from __future__ import annotations

ALERT_TYPES = (
    "elder.inactive",
    "elder.routine",
    "sensor.silent",
    "lock.unregistered",
    "tenant.unregistered",
    "watchlist.match",
    "device.offline",
    "smoke",
    "gate.blacklist",
    "visitor.unapproved",
    "patrol.missed",
    "throw",
    "fall",
)
SEVERITIES = ("low", "medium", "high", "critical")
# alerts that reveal the wanted list (a tip-off risk), with the one severity their rule raises them at
# (alerts/access.py hides them, and takes them off the open-alert counts, for everyone else)
WANTED_LIST_ALERTS = {"watchlist.match": "critical"}
