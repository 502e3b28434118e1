"""Specific exceptions; each carries one sentence a user can read."""

from __future__ import annotations


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
