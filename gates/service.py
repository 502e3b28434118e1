"""Visitor passes (智能访客): invite or apply, approve or reject, and the live list the gates check.

Approved passes are projected into Redis (``rule:passes`` of the community: the visitor's ID hash
and plate → the pass), so that the worker decides at the gate without a database query.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from auth.masking import mask_id_number
from auth.policy import can
from auth.principal import Principal
from auth.service import Auditor
from closedloop.wanted import check_person
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.i18n import t
from core.secrets import keyed_hash
from gates.models import VisitorPass
from gates.passes import project_passes
from registry import validate
from registry.models import Household
from store.sql import utcnow
from store.stores import Stores

MAX_PASS_DAYS = 7
SELF_APPLIED = "visitor:self"  # requested_by of a visitor's own application (the public page /visit)


PENDING_PAGE_SIZE = 20  # pending passes on one page of the approval panel


@dataclass
class PassRequest:
    """What a resident (or the visitor) fills in."""

    household: str
    visitor_name: str
    id_number: str
    phone: str
    plate: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    reason: str


@dataclass
class _Valid:
    """A request's checked and normalised values."""

    household: Household
    name: str
    id_number: str
    phone: str
    plate: str
    start: dt.datetime
    end: dt.datetime


class FieldErrors(InvalidInput):
    """Form errors by field name (each with one sentence), and a code per field for translated pages.

    Codes: ``name``, ``id_number``, ``phone``, ``plate``, ``household``, ``order`` (ends before it
    starts), ``over`` (already over), ``too_long``, ``overlap``; the i18n key is ``visitor.err.<code>``."""

    def __init__(self, errors: dict[str, str], codes: dict[str, str] | None = None) -> None:
        self.errors = errors
        self.codes = codes or {}
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))

    def texts(self, lang: str) -> dict[str, str]:
        """Each field's error in the page's language (a field without a code keeps its sentence)."""
        return {
            name: t(f"visitor.err.{self.codes[name]}", lang) if name in self.codes else text
            for name, text in self.errors.items()
        }


class Visitors:
    """Visitor passes on one set of stores."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.auditor = Auditor(stores.sessions)

    def check(self, req: PassRequest, *, now: dt.datetime | None = None) -> None:
        """Check every field of a request without creating anything; FieldErrors names each error."""
        self._checked(req, now or utcnow())

    def request(self, req: PassRequest, *, requested_by: str, now: dt.datetime | None = None) -> VisitorPass:
        """Create a pending pass; every field is checked and every error named."""
        valid = self._checked(req, now or utcnow())
        visitor = VisitorPass(
            id=secrets.token_hex(8),
            community_id=valid.household.community_id,
            household_id=valid.household.id,
            visitor_name=valid.name,
            id_hash=keyed_hash(self.stores.id_hash_key, valid.id_number),
            id_masked=mask_id_number(valid.id_number) or "",
            phone=valid.phone,
            plate=valid.plate or None,
            valid_from=valid.start,
            valid_to=valid.end,
            reason=req.reason.strip()[:500],
            status="pending",
            requested_by=requested_by,
        )
        with self.stores.sessions.begin() as session:
            session.add(visitor)
        self.stores.redis.incr(self.stores.keys.version(valid.household.community_id))
        # the wanted list: the police get the critical alert; the resident's page shows the same pass
        check_person(
            self.stores,
            visitor.community_id,
            visitor.id_hash,
            visitor.household_id,
            source="visitor_pass",
            extra={"pass": visitor.id},
        )
        return visitor

    def _checked(self, req: PassRequest, now: dt.datetime) -> _Valid:
        errors: dict[str, str] = {}
        codes: dict[str, str] = {}
        name = validate.normalise_text(req.visitor_name)
        if not 2 <= len(name) <= 64:
            errors["visitor_name"], codes["visitor_name"] = "name must have 2–64 characters", "name"
        number = plate = phone = ""
        try:
            number = validate.id_number(req.id_number)
        except InvalidInput as err:
            errors["id_number"], codes["id_number"] = str(err), "id_number"
        try:
            phone = validate.phone(req.phone)
        except InvalidInput as err:
            errors["phone"], codes["phone"] = str(err), "phone"
        if req.plate.strip():
            try:
                plate = validate.plate(req.plate)
            except InvalidInput as err:
                errors["plate"], codes["plate"] = str(err), "plate"
        # in UTC: SQLite keeps no offset, so a Shanghai-local time would come back 8 h late
        start, end = _aware(req.valid_from).astimezone(dt.UTC), _aware(req.valid_to).astimezone(dt.UTC)
        if end <= start:
            errors["valid_to"], codes["valid_to"] = "the visit must end after it starts", "order"
        elif end <= now:
            errors["valid_to"], codes["valid_to"] = "the visit is already over", "over"
        elif end - start > dt.timedelta(days=MAX_PASS_DAYS):
            errors["valid_to"], codes["valid_to"] = f"a pass lasts at most {MAX_PASS_DAYS} days", "too_long"
        with self.stores.sessions() as session:
            household = session.get(Household, req.household) if req.household else None
            if household is None:
                errors["household"], codes["household"] = "unknown household", "household"
            if number and household is not None and "valid_to" not in errors:
                id_hash = keyed_hash(self.stores.id_hash_key, number)
                overlapping = session.scalars(
                    select(VisitorPass).where(
                        VisitorPass.id_hash == id_hash,
                        VisitorPass.household_id == household.id,
                        VisitorPass.status.in_(["pending", "approved"]),
                    )
                ).all()
                if any(_aware(p.valid_from) < end and start < _aware(p.valid_to) for p in overlapping):
                    errors["valid_from"] = "this visitor already has a pass for an overlapping time"
                    codes["valid_from"] = "overlap"
        if errors or household is None:
            raise FieldErrors(errors, codes)
        return _Valid(household, name, number, phone, plate, start, end)

    def pending(
        self, principal: Principal, *, page: int = 0, newest_first: bool = False
    ) -> tuple[list[VisitorPass], int]:
        """One page of the passes waiting for a decision in the caller's community (oldest first, or
        newest first), and how many wait in all: a flood of applications never hides the newest."""
        if not can(principal, "visitors.approve"):
            return [], 0
        with self.stores.sessions() as session:
            where = [VisitorPass.status == "pending"]
            if principal.scope.communities is not None:
                where.append(VisitorPass.community_id.in_(sorted(principal.scope.communities)))
            total = session.scalar(select(func.count()).select_from(VisitorPass).where(*where)) or 0
            order = VisitorPass.created_at.desc() if newest_first else VisitorPass.created_at
            page = max(0, min(page, (total - 1) // PENDING_PAGE_SIZE if total else 0))
            query = (
                select(VisitorPass)
                .where(*where)
                .order_by(order, VisitorPass.id)
                .offset(page * PENDING_PAGE_SIZE)
                .limit(PENDING_PAGE_SIZE)
            )
            return list(session.scalars(query)), total

    def of_household(self, household: str) -> list[VisitorPass]:
        """A household's passes, newest first (for the resident's page)."""
        with self.stores.sessions() as session:
            return list(
                session.scalars(
                    select(VisitorPass)
                    .where(VisitorPass.household_id == household)
                    .order_by(VisitorPass.created_at.desc())
                    .limit(20)
                )
            )

    def decide(self, principal: Principal, pass_id: str, *, approve: bool, note: str = "") -> VisitorPass:
        """Approve or reject a pending pass (property or police of its community); a rejection needs a reason."""
        if not can(principal, "visitors.approve"):
            self.auditor.record(
                principal, "denied", target=f"visitor:{pass_id}", reason="needs visitors.approve", outcome="denied"
            )
            raise Forbidden(key="visitor.error.may_not_approve")
        if not approve and len(note.strip()) < 2:
            raise InvalidInput(key="visitor.error.reason")
        with self.stores.sessions.begin() as session:
            visitor = session.get(VisitorPass, pass_id)
            if visitor is None or not principal.scope.allows_community(visitor.community_id):
                raise NotFound(key="visitor.error.no_pass", visitor_pass=pass_id)
            if visitor.status != "pending":
                raise Conflict(key="visitor.error.decided", status=visitor.status)
            visitor.status = "approved" if approve else "rejected"
            visitor.decided_by, visitor.decided_at, visitor.decision_note = principal.id, utcnow(), note.strip()[:500]
            snapshot = _snapshot(visitor)
        if approve:
            self.project(snapshot)
        self.auditor.record(
            principal,
            "visitor.approve" if approve else "visitor.reject",
            target=f"visitor:{pass_id}",
            reason=note[:500],
            community=snapshot["community"],
        )
        self.stores.redis.incr(self.stores.keys.version(snapshot["community"]))
        return self._reread(pass_id)

    def revocable(self, principal: Principal, *, now: dt.datetime | None = None) -> list[VisitorPass]:
        """The approved passes of the caller's community that have not ended (current and upcoming,
        soonest first, at most 100): what the approval panel offers to revoke."""
        if not can(principal, "visitors.approve"):
            return []
        with self.stores.sessions() as session:
            where = [VisitorPass.status == "approved", VisitorPass.valid_to > (now or utcnow())]
            if principal.scope.communities is not None:
                where.append(VisitorPass.community_id.in_(sorted(principal.scope.communities)))
            query = select(VisitorPass).where(*where).order_by(VisitorPass.valid_from, VisitorPass.id).limit(100)
            return list(session.scalars(query))

    def revoke(self, principal: Principal, pass_id: str, *, reason: str, now: dt.datetime | None = None) -> VisitorPass:
        """Revoke an approved or pending pass that has not ended (property or police of its community;
        a reason is needed): status ``revoked``, the reason as the decision note the resident sees, the
        gates told at once (the next decision is ``revoked``), audited ``visitor.revoke``."""
        if not can(principal, "visitors.approve"):
            self.auditor.record(
                principal, "denied", target=f"visitor:{pass_id}", reason="needs visitors.approve", outcome="denied"
            )
            raise Forbidden(key="visitor.error.may_not_approve")
        if len(reason.strip()) < 2:
            raise InvalidInput(key="visitor.error.revoke_reason", field="reason")
        with self.stores.sessions.begin() as session:
            visitor = session.get(VisitorPass, pass_id)
            if visitor is None or not principal.scope.allows_community(visitor.community_id):
                raise NotFound(key="visitor.error.no_pass", visitor_pass=pass_id)
            if visitor.status not in ("approved", "pending"):
                raise Conflict(key="visitor.error.not_revocable", status=visitor.status)
            if _aware(visitor.valid_to) <= (now or utcnow()):
                raise Conflict(key="visitor.error.pass_over")
            visitor.status = "revoked"
            visitor.decided_by, visitor.decided_at, visitor.decision_note = principal.id, utcnow(), reason.strip()[:500]
            snapshot = _snapshot(visitor)
        self.project(snapshot)
        self.auditor.record(
            principal,
            "visitor.revoke",
            target=f"visitor:{pass_id}",
            reason=reason[:500],
            community=snapshot["community"],
        )
        self.stores.redis.incr(self.stores.keys.version(snapshot["community"]))
        return self._reread(pass_id)

    def _reread(self, pass_id: str) -> VisitorPass:
        with self.stores.sessions() as session:
            found = session.get(VisitorPass, pass_id)
            assert found is not None
            return found

    def project(self, visitor: dict[str, Any]) -> None:
        """Rewrite the gate fields of an approved or revoked pass (beside the visitor's other passes)."""
        with self.stores.sessions() as session:
            project_passes(
                self.stores.redis,
                self.stores.keys,
                session,
                visitor["community"],
                id_hashes=[visitor["id_hash"]],
                plates=[visitor["plate"]] if visitor["plate"] else [],
            )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _snapshot(v: VisitorPass) -> dict[str, Any]:
    return {
        "id": v.id,
        "community": v.community_id,
        "household": v.household_id,
        "id_hash": v.id_hash,
        "plate": v.plate,
        "from": int(_aware(v.valid_from).timestamp() * 1000),
        "to": int(_aware(v.valid_to).timestamp() * 1000),
    }
