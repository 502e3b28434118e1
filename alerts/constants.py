"""What alerts there are: the types the rules raise, the severities, and the alerts that reveal
the wanted list."""

from __future__ import annotations

ALERT_TYPES = (
    "elder.inactive",
    "elder.routine",
    "elder.no_water",
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
    # issue 18 (interfaces §8): incidents by hand, residents' calls, low batteries
    "incident.reported",
    "resident.call",
    "device.battery_low",
)
INCIDENT_TYPE = "incident.reported"  # 接警登记: a call entered by hand at the station
RESIDENT_CALL_TYPE = "resident.call"  # a resident's call to the police from their page
INCIDENT_SOURCES = ("110", "phone", "walk_in", "resident", "patrol")
SEVERITIES = ("low", "medium", "high", "critical")
# alerts that reveal the wanted list (a tip-off risk), with the one severity their rule raises them at
# (alerts/access.py hides them, and takes them off the open-alert counts, for everyone else)
WANTED_LIST_ALERTS = {"watchlist.match": "critical"}
