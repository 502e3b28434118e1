"""Masking of personal data (PIPL): ID numbers, phones and names, per role."""

from __future__ import annotations

from auth.principal import Principal

# Roles that work with named people in their scope; the others see names partly masked,
# and the wall display sees no personal data at all.
NAMED_ROLES = ("admin", "police", "grid_worker")


def mask_id_number(value: str | None) -> str | None:
    """110105********002X: the place code and the last four characters."""
    if not value:
        return value
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """138****5678 for a mobile; a landline keeps its area code and last four digits."""
    if not value:
        return value
    digits = value.replace("-", "")
    if len(digits) == 11 and digits.startswith("1"):
        return digits[:3] + "****" + digits[-4:]
    if len(value) > 6:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    return "*" * len(value)


def mask_name(value: str | None) -> str | None:
    """张** : the surname only (two-character surnames kept when the name is long)."""
    if not value:
        return value
    keep = 2 if len(value) >= 4 else 1
    return value[:keep] + "*" * max(1, len(value) - keep)


def name_for(principal: Principal, value: str | None) -> str | None:
    """A person's name as this principal may see it."""
    if principal.role in NAMED_ROLES:
        return value
    if principal.role == "property":
        return mask_name(value)
    return None
