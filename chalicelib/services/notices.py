"""Who hears of what happens on a case, and the e-mails that tell them: a reminder from
the sweep, a parts request to its approvers, a service form to the dealer, a major quality
problem to management. The customer hears in their language, staff and partners in the
company's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from chalicelib.domain.case import Case
from chalicelib.domain.field_service import Party
from chalicelib.domain.policies import Policies
from chalicelib.domain.staff import Role
from chalicelib.domain.timers import Notice
from chalicelib.services.ports import OutboxMessage
from chalicelib.services.recipients import MANAGERS, SUPERVISORS, Address, Recipients
from chalicelib.settings import Settings


def _party(
    notice: Notice, case: Case, people: Recipients, policies: Policies
) -> list[Address]:
    """The dispatched technician (a member of staff), dealer or supplier (policies); a parts
    sale goes to whoever it is charged to, who may no longer be the party dispatched."""
    record = case.field_service
    dispatch = record.dispatch if record else None
    who = notice.values.get("charged_to") or (dispatch.to if dispatch else None)
    if who is None:
        return []
    partners = {**policies.field_service.suppliers, **policies.field_service.dealers}
    partner = partners.get(who)
    if partner is not None:
        return [(partner.name, partner.email)] if partner.email else []
    if dispatch is not None and dispatch.party is Party.TECHNICIAN:
        return people.member(who)
    return []


def recipients_for(
    notice: Notice, case: Case, people: Recipients, policies: Policies
) -> list[Address]:
    """Everyone to tell; the service centre stands in for a case nobody owns, for a company
    without supervisors on file, and for a partner without an e-mail address (so that
    someone forwards it)."""
    if notice.to == "customer":
        return [(case.customer.name, case.customer.email)]
    if notice.to == "party":
        return _party(notice, case, people, policies) or people.centre()
    if notice.to == "approvers":
        roles = frozenset(Role(r) for r in notice.values.get("roles", "").split(",") if r)
        return people.with_roles(roles) or people.centre()
    if notice.to == "rnd_qa":
        return people.with_roles(frozenset({Role.RND, Role.QA_MANAGER})) or people.centre()
    if notice.to == "management":
        return people.with_roles(MANAGERS) or people.centre()
    if notice.to == "owner":
        return people.member(case.owner) or people.centre() or people.with_roles(SUPERVISORS)
    if notice.to == "supervisors":
        return (
            people.with_roles(frozenset({Role.SUPERVISOR}))
            or people.with_roles(SUPERVISORS)
            or people.centre()
        )
    return people.with_roles(SUPERVISORS) or people.centre()


def _status_url(case: Case, settings: Settings) -> str:
    base = str(settings.public_base_url or case.links_base or "").rstrip("/")
    return f"{base}/status/{case.status_token}"


def notice_messages(
    notice: Notice,
    case: Case,
    recipients: list[Address],
    settings: Settings,
    policies: Policies,
    now: datetime,
) -> list[OutboxMessage]:
    """One outbox message per recipient: the customer in their language, staff in the
    company's."""
    messages = []
    for name, address in recipients:
        if notice.to == "customer":
            status_url = _status_url(case, settings)
            payload: dict[str, Any] = {
                "to": address,
                "customer_name": case.customer.name,
                "language": case.language.value,
                "case_number": case.case_number,
                "status_url": status_url,
                "values": {**notice.values, "survey_url": f"{status_url}/satisfaction"},
            }
        else:
            payload = {
                "to": address,
                "to_name": name,
                "customer_name": case.customer.name,
                "language": settings.default_language.value,
                "case_number": case.case_number,
                "timezone": policies.calendar.timezone,
                "values": {**notice.values, "owner": case.owner or ""},
            }
        messages.append(
            OutboxMessage(
                message_id=uuid.uuid4().hex,
                case_id=case.case_id,
                template=notice.template,
                payload=payload,
                due_at=now,
            )
        )
    return messages
