"""Specific exceptions; each carries one sentence a user can read."""

from __future__ import annotations

from core.i18n import t


class SandtableError(Exception):
    """Base of every error a user may see; str(err) is the one-line reason."""


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


class TranslatedInput(InvalidInput):
    """Invalid input whose sentence is in the translation table: English in logs and on the command
    line (str), the page's language on a page (``text(lang)``)."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(t(key, "en", **values))
        self.key = key
        self.values = values

    def text(self, lang: str) -> str:
        """The sentence in the given language."""
        return t(self.key, lang, **self.values)
