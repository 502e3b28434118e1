"""The installation's secret: signs sessions and keys the hashes of ID numbers."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from core.errors import ConfigError
from core.settings import Settings


def installation_secret(settings: Settings) -> bytes:
    """SANDTABLE_SECRET_KEY, or a random key generated once into var/secret.key."""
    if settings.secret_key:
        if len(settings.secret_key) < 16:
            raise ConfigError("SANDTABLE_SECRET_KEY: must be at least 16 characters")
        return settings.secret_key.encode()
    path: Path = settings.var_dir / "secret.key"
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the installation secret."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of value, hex: how ID numbers are stored in streams and the watchlist."""
    return hmac.new(key, value.strip().upper().encode(), hashlib.sha256).hexdigest()
