"""Demo accounts: one per role for each demo community and one grid worker per grid."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.models import User
from auth.service import create_user
from registry.models import Community, Grid, Guard

DEMO_PASSWORD = "sandtable2026"


def create_demo_users(session: Session) -> list[tuple[str, str, str | None, str | None]]:
    """Create the demo accounts; returns (username, role, community, grid) of each."""
    made: list[tuple[str, str, str | None, str | None]] = []

    def add(
        username: str,
        role: str,
        community: str | None,
        grid: str | None = None,
        name: str = "",
        guard: str | None = None,
    ) -> None:
        create_user(
            session, username, DEMO_PASSWORD, role, community=community, grid=grid, display_name=name, guard=guard
        )
        made.append((username, role, community, grid))

    add("admin", "admin", None, name="系统管理员")
    for community in session.scalars(select(Community).order_by(Community.id)):
        cid = community.id
        add(f"police.{cid}", "police", cid, name=f"{community.name}社区民警")
        add(f"property.{cid}", "property", cid, name=f"{community.name}物业")
        add(f"wall.{cid}", "wall", cid, name=f"{community.name}警务室大屏")
        for grid in session.scalars(select(Grid).where(Grid.community_id == cid).order_by(Grid.id)):
            worker = session.scalar(select(Guard).where(Guard.grid_id == grid.id, Guard.kind == "grid_worker"))
            add(
                f"grid.{grid.id}",
                "grid_worker",
                cid,
                grid.id,
                name=worker.name if worker else grid.name,
                guard=worker.id if worker else None,
            )
    made.extend(create_city_users(session))
    return made


def create_city_users(session: Session) -> list[tuple[str, str, str | None, str | None]]:
    """The city command centre's accounts (every community in scope): an officer and its wall screen."""
    made: list[tuple[str, str, str | None, str | None]] = []
    for username, role, name in (("police.city", "police", "市局指挥中心"), ("wall.city", "wall", "市局指挥中心大屏")):
        if session.scalar(select(User).where(User.username == username)) is None:
            create_user(session, username, DEMO_PASSWORD, role, display_name=name)
            made.append((username, role, None, None))
    return made
