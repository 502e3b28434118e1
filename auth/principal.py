"""Who is calling: the principal of a request, from the server session or an API token."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context

from registry.queries import Scope

ROLES = ("admin", "police", "grid_worker", "guard", "property", "wall")
CITY_ROLES = ("police", "wall")  # may be city-wide: an account of these roles without a community
GUARD_ROLES = ("guard", "grid_worker", "police")  # the roles an account linked to a guard (万家卫士) may have


@dataclass(frozen=True)
class Principal:
    """The caller of one request; built on the server, never from what the browser sends."""

    kind: str  # user / token / anonymous / system
    id: str
    role: str | None
    community: str | None = None
    grid: str | None = None
    name: str = ""
    token_scope: str | None = None
    guard: str | None = None  # the guard (万家卫士) this user is, when they take tasks

    @property
    def scope(self) -> Scope:
        """The data this principal may see."""
        if self.role == "admin" or self.kind == "system":
            return Scope()
        if self.role in CITY_ROLES and self.community is None and self.kind == "user":
            return Scope()  # the city command centre (市局指挥中心): every community
        if self.community is None or self.role is None:
            return Scope(communities=frozenset())
        return Scope(communities=frozenset({self.community}), grid=self.grid if self.role == "grid_worker" else None)

    @property
    def city_wide(self) -> bool:
        """True when the principal sees more than one community (the city view makes sense)."""
        communities = self.scope.communities
        return communities is None or len(communities) > 1

    @property
    def authenticated(self) -> bool:
        """True for a signed-in user or a valid token."""
        return self.kind in ("user", "token", "system")


ANONYMOUS = Principal(kind="anonymous", id="", role=None)
SYSTEM = Principal(kind="system", id="system", role="admin", name="system")


def current_principal() -> Principal:
    """The principal of the current request (set by api.access before every request)."""
    if not has_request_context():
        return ANONYMOUS
    principal: Principal = g.get("principal", ANONYMOUS)
    return principal
