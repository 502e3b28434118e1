"""The routing policy: which event an alert's step is, who must know about it, and which targets
want it — small pure functions (docs/closed-loop.md, "Notifications").

Defaults (issue #18):
- every alert raised → the community's police on duty (the ``police`` audience: police accounts of
  the community, the station's wall, admins);
- smoke, fall and thrown-object alerts → the property staff at once (``property``);
- an alert with a grid → the grid worker of that grid (``grid:G``);
- a task offered → the guard it is offered to (``guard:G``: the account linked to the guard), or the
  property office;
- a missed SLA (the closed loop's ``escalated`` step) → the station's supervisors (``supervisor``:
  the accounts named by SANDTABLE_NOTIFY_SUPERVISORS).
"""

from __future__ import annotations

from alerts.constants import SEVERITIES, WANTED_LIST_ALERTS
from alerts.lifecycle import CLOSED_STATUSES
from auth.principal import Principal

EVENTS = ("alert.raised", "alert.escalated", "alert.dispatched", "alert.closed", "task.offered")
CHANNELS = ("webhook", "sms")
PROPERTY_AT_ONCE = frozenset({"smoke", "fall", "throw"})
SMS_EVENTS = ("alert.raised", "alert.escalated")  # a text message per dispatch or close would be noise
STEP_EVENTS = {
    "raised": "alert.raised",
    "escalated": "alert.escalated",
    "dispatched": "alert.dispatched",
    "task_offered": "task.offered",
    **dict.fromkeys(CLOSED_STATUSES, "alert.closed"),
}


def event_of_step(action: str) -> str | None:
    """The event an alert's timeline step is (None: a repeat, an acknowledgement, …)."""
    return STEP_EVENTS.get(action)


def audiences(event: str, alert_type: str, grid: str | None, assignee: str | None = None) -> list[str]:
    """Who in the app must know about this event of an alert (assignee: the guard, or "property",
    a task is offered to)."""
    if event == "alert.raised":
        out = ["police"]
        if alert_type in PROPERTY_AT_ONCE:
            out.append("property")
        if grid:
            out.append(f"grid:{grid}")
        return out
    if event == "alert.escalated":
        return ["supervisor"]
    if event == "task.offered" and assignee:
        return ["property"] if assignee == "property" else [f"guard:{assignee}"]
    return []


def audiences_of(principal: Principal, supervisors: frozenset[str]) -> list[str]:
    """The audiences a signed-in principal belongs to (server-side: role, grid and username)."""
    role = principal.role
    out: list[str] = []
    if role in ("admin", "police", "wall"):
        out.append("police")
    if role == "property":
        out.append("property")
    if role == "grid_worker" and principal.grid:
        out.append(f"grid:{principal.grid}")
    if principal.guard:
        out.append(f"guard:{principal.guard}")  # the tasks offered to the guard the account is
    if principal.kind == "user" and role in ("admin", "police") and principal.id in supervisors:
        out.append("supervisor")
    return out


def severity_rank(severity: str) -> int:
    """low 0 … critical 3 (an unknown severity ranks lowest)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def leaves_the_system(alert_type: str) -> bool:
    """False for the alerts that reveal the wanted list: they are never sent outside the app."""
    return alert_type not in WANTED_LIST_ALERTS


def target_wants(
    *, types: list[str], events: list[str], min_severity: str, alert_type: str, severity: str, event: str
) -> bool:
    """True when a target subscribed to this event of this alert."""
    return (
        (not types or alert_type in types)
        and (not events or event in events)
        and severity_rank(severity) >= severity_rank(min_severity)
    )


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """The wait after the n-th failed attempt: base, 2×base, 4×base … capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))
