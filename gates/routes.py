"""Editing patrol routes (巡更路线): place a checkpoint, order a route, set its schedule, save.

Role and scope come from the server-side principal (``routes.edit``: police, admin, the property
office of the community). A route is checked by ``registry.routes.route_problems`` — the same check as
the import — and every change is audited (``route.save``, ``route.delete``, ``checkpoint.add``). The workers
see the change when their registry cache reloads (``ingest.directory``, at most ``ttl_s`` later);
checks planned under an older schedule are dropped or moved when they fall due (``analytics/rules/gates.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shapely.geometry import Point, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.policy import can
from auth.principal import Principal
from auth.service import Auditor
from core.errors import Forbidden, InvalidInput, NotFound
from registry import importers, validate
from registry import routes as patrol
from registry.models import Community, Device, PatrolRoute
from store.stores import Stores

MAX_NAME = 100


class RouteRejected(InvalidInput):
    """A route that may not be saved: every problem, the first one as the sentence."""

    def __init__(self, *, problems: list[patrol.Problem]) -> None:
        first = problems[0]
        super().__init__(key=first.key, **first.values)
        self.problems = problems


@dataclass(frozen=True)
class RouteView:
    """A route as the editor lists it."""

    id: str
    name: str
    interval: int
    start_hour: int
    end_hour: int
    tolerance: int
    checkpoints: list[tuple[int, str, int]]  # (seq, device, offset)


class RouteEditor:
    """Patrol routes and checkpoints of a community, for the people who may edit them."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.auditor = Auditor(stores.sessions)

    def _check_allowed(self, principal: Principal, community: str) -> None:
        if can(principal, "routes.edit") and principal.scope.allows_community(community):
            return
        self.auditor.record(
            principal, "denied", target=f"routes:{community}", reason="needs routes.edit", outcome="denied"
        )
        raise Forbidden(key="route.error.forbidden")

    def checkpoints(self, principal: Principal, community: str) -> list[dict[str, Any]]:
        """The community's checkpoint devices: id, name, lat, lon."""
        self._check_allowed(principal, community)
        with self.stores.sessions() as session:
            found = session.scalars(
                select(Device).where(Device.community_id == community, Device.type == "checkpoint").order_by(Device.id)
            )
            return [{"id": d.id, "name": d.name, "lat": d.lat, "lon": d.lon} for d in found]

    def routes(self, principal: Principal, community: str) -> list[RouteView]:
        """The community's routes with their checkpoints in order."""
        self._check_allowed(principal, community)
        with self.stores.sessions() as session:
            return [
                RouteView(
                    r.id,
                    r.name,
                    r.interval_minutes,
                    r.start_hour,
                    r.end_hour,
                    r.tolerance_minutes,
                    [(c.seq, c.device_id, c.offset_minutes) for c in r.checkpoints],
                )
                for r in session.scalars(
                    select(PatrolRoute).where(PatrolRoute.community_id == community).order_by(PatrolRoute.id)
                )
            ]

    def add_checkpoint(self, principal: Principal, community: str, name: str, lat: float, lon: float) -> str:
        """Place a new checkpoint device (inside the community's boundary); its id."""
        self._check_allowed(principal, community)
        label = validate.normalise_text(name or "")
        if not label:
            raise InvalidInput(key="route.error.checkpoint_name")
        if len(label) > MAX_NAME:
            raise InvalidInput(key="route.error.too_long", n=MAX_NAME)
        with self.stores.sessions.begin() as session:
            found = session.get(Community, community)
            if found is None:
                raise NotFound(key="route.error.no_community", community=community)
            if not shape(json.loads(found.boundary)).covers(Point(lon, lat)):
                raise InvalidInput(key="route.error.outside")
            taken = set(session.scalars(select(Device.id).where(Device.id.like(f"CP-{community}-%"))))
            device = next(
                f"CP-{community}-{n:02d}" for n in range(1, len(taken) + 2) if f"CP-{community}-{n:02d}" not in taken
            )
            row = {"id": device, "type": "checkpoint", "name": label, "lat": lat, "lon": lon}
            importers.import_records(session, "devices", [row], community, id_hash_key=b"")
        self.auditor.record(principal, "checkpoint.add", target=f"device:{device}", reason=label, community=community)
        return device

    def new_route_id(self, community: str) -> str:
        """A free id for a new route of the community (``<community>-R<n>``)."""
        with self.stores.sessions() as session:
            taken = set(session.scalars(select(PatrolRoute.id).where(PatrolRoute.community_id == community)))
        return next(f"{community}-R{n}" for n in range(1, len(taken) + 2) if f"{community}-R{n}" not in taken)

    def problems(self, principal: Principal, community: str, draft: patrol.RouteDraft) -> list[patrol.Problem]:
        """Every problem of a route, saving nothing (a draft without an id is a new route)."""
        self._check_allowed(principal, community)
        draft.id = draft.id or self.new_route_id(community)
        with self.stores.sessions() as session:
            return self._problems(session, community, draft)

    def _problems(self, session: Session, community: str, draft: patrol.RouteDraft) -> list[patrol.Problem]:
        devices = patrol.checkpoint_devices(session, community)
        owner = patrol.route_owner(session, draft.id)
        return patrol.route_problems(draft, devices, owner=owner, community=community)

    def save(self, principal: Principal, community: str, draft: patrol.RouteDraft) -> str:
        """Check and save a route (all of it or nothing; a draft without an id is a new route); RouteRejected
        names every problem."""
        self._check_allowed(principal, community)
        draft.id = draft.id or self.new_route_id(community)
        with self.stores.sessions.begin() as session:
            problems = self._problems(session, community, draft)
            if problems:
                raise RouteRejected(problems=problems)
            route = patrol.write_route(session, community, draft)
            order = " → ".join(device for _seq, device, _offset in patrol.checkpoints_of(draft))
            summary = (
                f"{route.name}: every {route.interval_minutes} min {route.start_hour}:00–{route.end_hour}:00, "
                f"±{route.tolerance_minutes} min; {order}"
            )
        self.auditor.record(principal, "route.save", target=f"route:{draft.id}", reason=summary, community=community)
        self.stores.redis.incr(self.stores.keys.version(community))
        return str(draft.id)

    def delete(self, principal: Principal, community: str, route_id: str) -> None:
        """Delete a route of the community with its checkpoints' order (the checkpoint devices stay)."""
        self._check_allowed(principal, community)
        with self.stores.sessions.begin() as session:
            route = session.get(PatrolRoute, route_id)
            if route is None or route.community_id != community:
                raise NotFound(key="route.error.no_route", route=route_id)
            name = route.name
            session.delete(route)
        self.auditor.record(principal, "route.delete", target=f"route:{route_id}", reason=name, community=community)
        self.stores.redis.incr(self.stores.keys.version(community))
