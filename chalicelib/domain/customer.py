"""The customer file (客户档案): one record per customer, found again by e-mail or phone."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.case import Case, Language


def customer_id_for(email: str) -> str:
    """The same e-mail is always the same customer, so intake needs no lookup to attach a
    new case to the existing record."""
    return "cu_" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:24]


def phone_key(phone: str) -> str | None:
    """A phone number as it is matched: digits only (with a leading + kept)."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 5:
        return None
    return ("+" if phone.strip().startswith("+") else "") + digits


class CustomerRecord(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    customer_id: str
    name: str
    email: str
    phone: str | None = None
    language: Language
    first_seen: datetime
    last_seen: datetime
    case_count: int = 0
    # SES said this address bounced for good or complained: {at, reason, kind, case_id}.
    email_undeliverable: dict[str, str] | None = None


def record_for(case: Case) -> CustomerRecord:
    """The customer as a new case describes them (latest name, phone and language win)."""
    return CustomerRecord(
        customer_id=customer_id_for(case.customer.email),
        name=case.customer.name,
        email=case.customer.email,
        phone=case.customer.phone,
        language=case.language,
        first_seen=case.created_at,
        last_seen=case.created_at,
        case_count=1,
    )
