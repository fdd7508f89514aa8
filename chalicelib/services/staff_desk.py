"""The staff's side of the desk: who is calling (tokens), and working on cases."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

from chalicelib.domain.case import OPEN_STATUSES, Case, CaseEvent, CaseStatus
from chalicelib.domain.customer import CustomerRecord
from chalicelib.domain.lifecycle import ACTIONS, ActionRefused, PolicyPromises, apply_action
from chalicelib.domain.policies import Policies
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.units import Unit
from chalicelib.services.notices import notice_messages, recipients_for
from chalicelib.services.ports import (
    CaseFilter,
    CaseStore,
    OutboxMessage,
    StaleCase,
    WriteConflict,
)
from chalicelib.services.recipients import Recipients
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sdk_"


class StaffStore(Protocol):
    def add_staff(self, member: StaffMember, token_hash: str, now: datetime) -> None: ...

    def get_staff(self, staff_id: str) -> tuple[StaffMember, str | None] | None: ...

    def list_staff(self) -> list[StaffMember]: ...

    def replace_token(
        self, member: StaffMember, old_hash: str | None, new_hash: str | None, now: datetime
    ) -> None: ...

    def staff_by_token(self, token_hash: str) -> StaffMember | None: ...


class UnknownStaff(Exception):
    pass



class CaseNotFound(Exception):
    pass


@dataclass(frozen=True)
class StaleVersion(Exception):
    """The caller worked on an old version; says what changed since."""

    current: Case
    changes: list[CaseEvent]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# -- staff and their tokens (the CLI) ---------------------------------------------------


def add_staff(
    store: StaffStore, *, staff_id: str, name: str, role: Role, email: str | None,
    now: datetime, language: Literal["zh", "en"] | None = None,
) -> tuple[StaffMember, str]:
    """A new member of staff; returns them and their token, shown once and never stored."""
    member = StaffMember(staff_id=staff_id, name=name, role=role, email=email,
                         language=language)
    token = new_token()
    store.add_staff(member, hash_token(token), now)
    return member, token


def issue_token(store: StaffStore, staff_id: str, now: datetime) -> str:
    """A new token for someone; their previous token stops working."""
    found = store.get_staff(staff_id)
    if found is None:
        raise UnknownStaff(staff_id)
    member, old_hash = found
    token = new_token()
    active = member.model_copy(update={"active": True})
    store.replace_token(active, old_hash, hash_token(token), now)
    return token


def revoke_token(store: StaffStore, staff_id: str, now: datetime) -> None:
    found = store.get_staff(staff_id)
    if found is None:
        raise UnknownStaff(staff_id)
    member, old_hash = found
    store.replace_token(member.model_copy(update={"active": False}), old_hash, None, now)


def staff_for(store: StaffStore, authorization: str | None) -> StaffMember | None:
    """Who an 'Authorization: Bearer …' header belongs to, if anyone (active only)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    member = store.staff_by_token(hash_token(token))
    return member if member is not None and member.active else None


# -- working on cases -------------------------------------------------------------------


def status_url(case: Case, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/status/{case.status_token}"


class UnitLookup(Protocol):
    def get_unit(self, serial_no: str) -> Unit | None: ...

    def record_operating_hours(
        self, serial_no: str, hours: int, at: datetime, by: str, *, on: date | None = None
    ) -> bool: ...


class DeskStore(CaseStore, StaffStore, Protocol):
    """Cases and the staff who work on them (one table, one store)."""


def act_on_case(
    store: DeskStore,
    policies: Policies,
    *,
    case_id: str,
    action: str,
    params: dict[str, Any] | None,
    expected_version: int,
    actor: StaffMember,
    now: datetime,
    base_url: str,
    settings: Settings,
    units: UnitLookup | None = None,
) -> Case:
    """Apply one action to a case. The change, its event and the customer's e-mails are
    written together, only if nobody changed the case since `expected_version`."""
    case = store.get_case(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    if case.version != expected_version:
        raise StaleVersion(case, store.events_since(case_id, expected_version))
    owner = (params or {}).get("owner") if action == "assign_owner" else None
    if isinstance(owner, str) and store.get_staff(owner) is None:
        raise ActionRefused(
            f"there is no member of staff '{owner}'",
            [{"field": "params.owner", "message": "not a member of staff"}],
        )
    params_given = params if isinstance(params, dict) else {}
    unit = None
    declared = ACTIONS.get(action)
    reads = declared.reads if declared is not None else frozenset()
    if "unit" in reads and units is not None:
        record = case.field_service
        serial = params_given.get("serial_no") or case.serial_no or (
            record.unit.serial_no if record and record.unit else None
        )
        unit = units.get_unit(serial) if isinstance(serial, str) and serial else None
    # The staff list is read at most once: for the names, and for whom to tell.
    people = Recipients(store, settings)
    change = apply_action(
        case, action, params, actor=actor, now=now, promises=PolicyPromises(policies),
        unit=unit, staff=people.members if "staff" in reads else None,
    )
    outbox = [
        OutboxMessage(
            message_id=uuid.uuid4().hex,
            case_id=case.case_id,
            template=message.template,
            payload={
                "to": case.customer.email,
                "customer_name": case.customer.name,
                "language": case.language.value,
                "case_number": case.case_number,
                "status_url": status_url(case, base_url),
                "values": message.values,
            },
            due_at=now,
        )
        for message in change.messages
    ]
    if change.notices:
        for notice in change.notices:
            to = recipients_for(notice, change.case, people, policies)
            outbox += notice_messages(notice, change.case, to, settings, policies, now)
    try:
        store.save_change(change.case, change.event, outbox, expected_version, previous=case)
    except StaleCase as stale:
        raise StaleVersion(stale.case, store.events_since(case_id, expected_version)) from None
    except WriteConflict:
        # Another change to this case at the same instant: if it went through, say so (409);
        # if not, the storage was merely busy (503, retry).
        now_is = store.get_case(case_id)
        if now_is is not None and now_is.version != expected_version:
            changes = store.events_since(case_id, expected_version)
            raise StaleVersion(now_is, changes) from None
        raise
    if action == "check_warranty":
        _keep_hour_reading(units, change.case, actor, now, policies)
    return change.case.model_copy(update={"status_token": case.status_token})


def _keep_hour_reading(
    units: UnitLookup | None, case: Case, actor: StaffMember, now: datetime, policies: Policies
) -> None:
    """An hour-meter reading taken in a warranty check goes on the unit too, so that the
    next check knows it. The case already holds it (written above); the unit only ever
    takes a higher reading, so a failure here loses nothing and is only logged."""
    record = case.field_service
    check = record.warranty if record else None
    if units is None or record is None or record.unit is None or check is None:
        return
    if check.operating_hours is None:
        return
    from chalicelib.services.units import company_today

    try:
        units.record_operating_hours(record.unit.serial_no, check.operating_hours, now,
                                     actor.actor, on=company_today(policies, now))
    except Exception:  # the reading is on the case: the unit can wait
        logger.warning("could not record the hour reading of unit %s", record.unit.serial_no,
                       exc_info=True)


def list_cases(
    store: CaseStore,
    *,
    status: str | None = None,
    kind: str | None = None,
    owner: str | None = None,
    overdue_at: datetime | None = None,
    limit: int = 100,
) -> list[Case]:
    statuses = frozenset({status}) if status else frozenset(s.value for s in OPEN_STATUSES)
    return store.list_cases(
        CaseFilter(statuses=statuses, kind=kind, owner=owner, overdue_at=overdue_at, limit=limit)
    )


def known_status(value: str) -> bool:
    return value in CaseStatus._value2member_map_


# -- the customer file --------------------------------------------------------------------


class CustomerFile(Protocol):
    def find_customers(
        self, *, email: str | None = None, phone: str | None = None
    ) -> list[CustomerRecord]: ...


class AmbiguousCaller(Exception):
    """Several customers gave this phone number: staff must say which (by e-mail)."""

    def __init__(self, candidates: list[CustomerRecord]) -> None:
        super().__init__("several customers have this phone number")
        self.candidates = candidates


def fill_from_customer_file(store: CustomerFile, data: Any) -> Any:
    """A caller already in the file needs little spelt out: known by e-mail, or by a phone
    number only they gave, the case takes their name, e-mail and language from the file."""
    customer = data.get("customer") if isinstance(data, dict) else None
    if not isinstance(customer, dict):
        return data
    email, phone = customer.get("email"), customer.get("phone")
    if isinstance(email, str) and email:
        found = store.find_customers(email=email)
    elif isinstance(phone, str) and phone:
        found = store.find_customers(phone=phone)
        if len(found) > 1:
            raise AmbiguousCaller(found)
    else:
        return data
    if not found:
        return data
    record = found[0]
    given = {key: value for key, value in customer.items() if value not in (None, "")}
    filled = {**data, "customer": {"name": record.name, "email": record.email, **given}}
    if not data.get("language"):
        filled["language"] = record.language.value
    return filled
