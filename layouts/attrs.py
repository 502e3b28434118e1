"""HTML data-* attributes for Dash components (their typed signatures do not list them)."""

from __future__ import annotations

from typing import Any


def data_attrs(**values: str) -> dict[str, Any]:
    """``data_attrs(since=x)`` → ``{"data-since": x}``, for ``html.Div(**data_attrs(...))``."""
    return {f"data-{key.replace('_', '-')}": value for key, value in values.items()}
