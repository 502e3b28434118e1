"""The page permission of every server-side Dash callback, checked in one place.

A callback belongs to a page, and the page's permission decides who may call it at all: the
wall display may see alerts, but it may not call the console's detail callback, which shows a
subject's evidence. ``page_callback(permission, ...)`` is ``dash.callback`` that records the
callback's output under its permission; the access layer (``api.access``) refuses any
``/_dash-update-component`` request whose principal lacks the permission, before Dash decodes
the request, and the wrapper checks again when the function runs. A server callback that is
declared without a permission is refused to everybody (``callback_permission`` returns None).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from dash import callback
from dash._callback import GLOBAL_CALLBACK_LIST
from dash.exceptions import PreventUpdate

from auth.policy import PERMISSIONS, can
from auth.principal import current_principal

# Dash's own page router (use_pages): every signed-in principal may ask for a page; each page's
# layout function then checks its own permission (layouts.shell.forbidden).
SIGNED_IN = "signed.in"
DASH_PAGE_ROUTER = ".._pages_content.children..._pages_store.data.."

_PERMISSIONS: dict[str, str] = {DASH_PAGE_ROUTER: SIGNED_IN}
_KNOWN = frozenset().union(*PERMISSIONS.values()) | {SIGNED_IN}


def page_callback(permission: str, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``dash.callback`` for a callback of a page that needs ``permission``."""
    if permission not in _KNOWN:
        raise ValueError(f"unknown permission {permission!r}")

    def wrap(function: Callable[..., Any]) -> Any:
        @functools.wraps(function)
        def guarded(*call_args: Any, **call_kwargs: Any) -> Any:
            if not can(current_principal(), permission):
                raise PreventUpdate  # the access layer refused it already; a second lock, not the first
            return function(*call_args, **call_kwargs)

        registered = callback(*args, **kwargs)(guarded)
        _PERMISSIONS[GLOBAL_CALLBACK_LIST[-1]["output"]] = permission
        return registered

    return wrap


def callback_permission(output: str) -> str | None:
    """The permission a server callback (by its output key) needs; None for an undeclared one."""
    return _PERMISSIONS.get(output)


def allowed(output: str) -> bool:
    """True when the current principal may call the callback with this output key."""
    permission = callback_permission(output)
    if permission is None:
        return False
    principal = current_principal()
    if permission == SIGNED_IN:
        return principal.authenticated
    return can(principal, permission)


def _dependency_ok(item: Any, pattern: bool) -> bool:
    """One input, state or output of a request: {id, property[, value]}, or a list of them for a
    pattern-matching (ALL/ALLSMALLER) dependency, whose ids are dicts."""
    if pattern and isinstance(item, list):
        return all(_dependency_ok(i, pattern) for i in item)
    return (
        isinstance(item, dict)
        and isinstance(item.get("property"), str)
        and (isinstance(item.get("id"), str) or (pattern and isinstance(item.get("id"), dict)))
    )


def request_shape_error(body: Any, spec: dict[str, Any]) -> str | None:
    """Why a ``/_dash-update-component`` body does not match its callback's declaration (None
    when it does): Dash itself would fail on it with a traceback."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    for part in ("inputs", "state"):
        declared = spec.get(part, [])
        sent = body.get(part, [])
        if not isinstance(sent, list) or len(sent) != len(declared):
            return f"'{part}' must be a list of {len(declared)} dependencies"
        for dep, item in zip(declared, sent, strict=True):
            if not _dependency_ok(item, pattern=str(dep.get("id", "")).startswith("{")):
                return f"'{part}' holds an item that is not {{id, property, value}}"
    output = str(body.get("output", ""))
    count = output.count("...") + 1 if output.startswith("..") else 1
    outputs = body.get("outputs")
    if output.startswith(".."):
        if not isinstance(outputs, list) or len(outputs) != count:
            return f"'outputs' must be a list of {count} outputs"
    else:
        outputs = [outputs]
    if not all(_dependency_ok(o, pattern=True) for o in outputs):
        return "'outputs' holds an item that is not {id, property}"
    return None
