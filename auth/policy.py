"""Which role may do what: one table, checked in the data layer by every route and callback."""

from __future__ import annotations

from auth.principal import Principal

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "view.wall",
            "view.console",
            "view.tasks",
            "view.city",
            "view.reports",
            "read.alerts",
            "read.evidence",
            "read.registry",
            "read.people",
            "read.notifications",
            "act.alerts",
            "dispatch",
            "unmask",
            "notices",
            "admin.users",
            "system.health",  # what the system dropped, and why (the console's data-integrity panel)
            "audit.read",
            "reports.export",
            "visitors.approve",
            "investigate",
            "modes.set",  # maintenance and away modes (upkeep/modes.py)
            "routes.edit",
        }
    ),
    "police": frozenset(
        {
            "view.wall",
            "view.city",
            "view.console",
            "view.tasks",
            "view.reports",
            "read.alerts",
            "read.evidence",
            "read.registry",
            "read.people",
            "read.notifications",
            "act.alerts",
            "dispatch",
            "unmask",
            "notices",
            "reports.export",
            "visitors.approve",
            "investigate",
            "modes.set",
            "routes.edit",
        }
    ),
    "grid_worker": frozenset(
        {
            "view.tasks",
            "read.alerts",
            "read.evidence",
            "read.registry",
            "read.people",
            "read.notifications",
            "tasks.work",
            "register.floating",
            "investigate",  # within their grid (the archive search is scoped by grid)
        }
    ),
    # a 万家卫士 member (volunteer, security, auxiliary police): their tasks page and nothing else
    "guard": frozenset({"view.tasks", "tasks.work", "read.notifications"}),
    "property": frozenset(
        {
            "view.tasks",
            "read.registry",
            "tasks.work",
            "visitors.approve",
            "read.people",
            "read.notifications",
            "routes.edit",  # the property office runs the security guards' patrol (电子巡更)
        }
    ),
    "wall": frozenset(
        {"view.wall", "view.city", "read.alerts", "read.registry", "read.notifications"}
    ),  # no read.evidence: a display
}
# Alert types a property account may see: the non-police matters handed to them.
PROPERTY_ALERT_TYPES = frozenset(
    {
        "smoke",
        "throw",
        "fall",
        "device.offline",
        "device.battery_low",  # the property office changes the batteries
        "sensor.silent",
        "visitor.unapproved",
        "patrol.missed",
    }
)


def can(principal: Principal, permission: str) -> bool:
    """True when the principal's role grants the permission."""
    if principal.kind == "system":
        return True
    if principal.token_scope == "ingest":
        return permission == "ingest"
    return permission in PERMISSIONS.get(principal.role or "", frozenset())


# The page each role lands on at "/" (police and admin on the wall, with the console a click away;
# a grid worker, the property office and a guard (万家卫士) on their tasks).
LANDING_PAGES: dict[str, str] = {
    "admin": "/",
    "police": "/",
    "wall": "/",
    "grid_worker": "/tasks",
    "property": "/tasks",
    "guard": "/tasks",
}


def landing_page(principal: Principal) -> str:
    """The path the principal is sent to when they open "/" (never a page they may not open).

    The city command centre (a city-wide officer or wall, not the admin) lands on the city view; a
    click there opens a community's wall at /?community=…"""
    if principal.role != "admin" and principal.community is None and principal.city_wide:
        return "/city"
    return LANDING_PAGES.get(principal.role or "", "/")
