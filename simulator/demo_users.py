"""Demo accounts: one per role for each demo community, one grid worker per grid, and one for every
guard (万家卫士) of the demo communities, so that each of them can be dispatched.

Every guard's account is ``guard.<guard id>`` (e.g. ``guard.wanhu-GD12``) except the grid workers
already signed in as ``grid.<grid id>``: police officers (民警) get a ``police`` account (they see
wanted-list hits and the console), grid workers a ``grid_worker`` account of their grid, and
auxiliary police, volunteers and security guards a ``guard`` account (their tasks page only; a
wanted-list hit reaches them only when SANDTABLE_WATCHLIST_VISIBLE_TO lists ``guard``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.models import User
from auth.service import create_user, hash_password
from registry.models import Community, Grid, Guard

DEMO_PASSWORD = "sandtable2026"
GUARD_ROLE_OF_KIND = {"police": "police", "grid_worker": "grid_worker"}  # any other kind: "guard"


def create_demo_users(session: Session) -> list[tuple[str, str, str | None, str | None]]:
    """Create the demo accounts; returns (username, role, community, grid) of each."""
    made: list[tuple[str, str, str | None, str | None]] = []
    hashed = hash_password(DEMO_PASSWORD)  # once: the demo has an account for each of its many guards

    def add(
        username: str,
        role: str,
        community: str | None,
        grid: str | None = None,
        name: str = "",
        guard: str | None = None,
    ) -> None:
        create_user(
            session,
            username,
            DEMO_PASSWORD,
            role,
            community=community,
            grid=grid,
            display_name=name,
            guard=guard,
            password_hash=hashed,
        )
        made.append((username, role, community, grid))

    add("admin", "admin", None, name="系统管理员")
    for community in session.scalars(select(Community).order_by(Community.id)):
        cid = community.id
        add(f"police.{cid}", "police", cid, name=f"{community.name}社区民警")
        add(f"property.{cid}", "property", cid, name=f"{community.name}物业")
        add(f"wall.{cid}", "wall", cid, name=f"{community.name}警务室大屏")
        linked: set[str] = set()
        for grid in session.scalars(select(Grid).where(Grid.community_id == cid).order_by(Grid.id)):
            worker = session.scalar(
                select(Guard).where(Guard.grid_id == grid.id, Guard.kind == "grid_worker").order_by(Guard.id)
            )
            add(
                f"grid.{grid.id}",
                "grid_worker",
                cid,
                grid.id,
                name=worker.name if worker else grid.name,
                guard=worker.id if worker else None,
            )
            if worker is not None:
                linked.add(worker.id)
        for guard in session.scalars(select(Guard).where(Guard.community_id == cid).order_by(Guard.id)):
            if guard.id not in linked:
                role = GUARD_ROLE_OF_KIND.get(guard.kind, "guard")
                role = "guard" if role == "grid_worker" and guard.grid_id is None else role
                grid_of = guard.grid_id if role == "grid_worker" else None
                add(f"guard.{guard.id}", role, cid, grid_of, name=guard.name, guard=guard.id)
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
