"""Specific exceptions; each carries one sentence a user can read."""

from __future__ import annotations

from core.i18n import t


class SandtableError(Exception):
    """Base of every error a user may see.

    Raised with a translation key and its values (``InvalidInput(key="task.error.state",
    status=…)``): ``str(err)`` is the English sentence (logs, the command line), ``text(lang)`` the
    sentence in the page's language. Errors only an operator sees (a setting, a store) may be raised
    with an English message instead; their ``text`` is that message."""

    default_key: str | None = None

    def __init__(self, message: str = "", *, key: str | None = None, **values: object) -> None:
        key = key or (None if message else self.default_key)
        super().__init__(message or (t(key, "en", **values) if key else ""))
        self.key = key
        self.values = values

    def text(self, lang: str) -> str:
        """The sentence in the given language."""
        return t(self.key, lang, **self.values) if self.key else str(self)


class ConfigError(SandtableError):
    """A setting is wrong: the message names the setting."""


class StoreUnavailable(SandtableError):
    """A store (Redis, the database) cannot be reached or started."""


class NotFound(SandtableError):
    """A requested record does not exist (or is outside the caller's scope)."""


class Forbidden(SandtableError):
    """The caller's role or scope does not allow this."""


class InvalidInput(SandtableError):
    """User input failed validation; the message says which field and why."""


class Conflict(InvalidInput):
    """Someone else changed the record meanwhile (optimistic locking): reload and try again."""

    default_key = "error.conflict"
