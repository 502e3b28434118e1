"""Defensive reading of callback inputs: a callback endpoint can be called by hand with anything."""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    """The value when it is a list (the inputs of an ALL pattern), else an empty list."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a dict (a Store's data), else an empty dict."""
    return value if isinstance(value, dict) else {}
