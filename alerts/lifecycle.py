"""An alert's life: its statuses, and which status may follow which (下发 → 处置 → 反馈)."""

from __future__ import annotations

STATUSES = ("new", "acknowledged", "dispatched", "on_scene", "resolved", "false_alarm")
OPEN_STATUSES = ("new", "acknowledged", "dispatched", "on_scene")
CLOSED_STATUSES = ("resolved", "false_alarm")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged", "dispatched", "on_scene", "resolved", "false_alarm"),
    "acknowledged": ("dispatched", "on_scene", "resolved", "false_alarm"),
    "dispatched": ("dispatched", "acknowledged", "on_scene", "resolved", "false_alarm"),
    "on_scene": ("resolved", "false_alarm"),
    "resolved": (),
    "false_alarm": (),
}


def can_become(current: str, status: str) -> bool:
    """True when an alert in status ``current`` may move to ``status``."""
    return status in TRANSITIONS.get(current, ())


def is_open(status: str) -> bool:
    """True while an alert still waits for someone (not resolved, not a false alarm)."""
    return status in OPEN_STATUSES


def step_key(action: str, actor: str) -> str:
    """The translation key of a timeline step: an alert raised by a person (an incident entered at
    the console, a resident's call) reads as registered (登记), one raised by the rules as detected."""
    if action == "raised" and actor not in ("system", ""):
        return "step.reported"
    return f"step.{action}"
