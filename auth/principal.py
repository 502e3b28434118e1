"""Who is calling: the principal of a request, from the server session or an API token."""

from __future__ import annotations

from dataclasses import dataclass

from registry.queries import Scope

ROLES = ("admin", "police", "grid_worker", "property", "wall")


@dataclass(frozen=True)
class Principal:
    """The caller of one request; built on the server, never from what the browser sends."""

    kind: str  # user / token / anonymous
    id: str
    role: str | None
    community: str | None = None
    grid: str | None = None
    name: str = ""

    @property
    def scope(self) -> Scope:
        """The data this principal may see."""
        if self.role == "admin":
            return Scope()
        if self.community is None:
            return Scope(communities=frozenset())
        return Scope(communities=frozenset({self.community}), grid=self.grid if self.role == "grid_worker" else None)


ANONYMOUS = Principal(kind="anonymous", id="", role=None)


def current_principal() -> Principal:
    """The principal of the current request (sessions arrive with the Access issue)."""
    return Principal(kind="user", id="demo", role="admin")
