"""The registry of rules: the worker runs every rule listed here."""

from __future__ import annotations

from analytics.rules.arrival import GeofenceArrival
from analytics.rules.base import Rule
from analytics.rules.battery import BatteryLow
from analytics.rules.elder_inactive import ElderInactive
from analytics.rules.elder_routine import ElderRoutine
from analytics.rules.elder_water import ElderNoWater
from analytics.rules.gates import PatrolMissed, VehicleCheck, VisitorCheck
from analytics.rules.hazards import Fall, GateBlacklist, Smoke, Throw
from analytics.rules.modes import Modes
from analytics.rules.occupancy import LockUnregistered, TenantUnregistered, WatchlistMatch
from analytics.rules.silence import DeviceOffline, SensorSilent
from core.settings import Settings

RULE_CLASSES: tuple[type[Rule], ...] = (
    ElderInactive,
    ElderRoutine,
    ElderNoWater,
    SensorSilent,
    DeviceOffline,
    BatteryLow,
    LockUnregistered,
    TenantUnregistered,
    WatchlistMatch,
    Smoke,
    GateBlacklist,
    Throw,
    Fall,
    GeofenceArrival,
    VisitorCheck,
    VehicleCheck,
    PatrolMissed,
    Modes,
)


def build_rules(settings: Settings) -> list[Rule]:
    """One instance of every rule."""
    return [cls(settings) for cls in RULE_CLASSES]
