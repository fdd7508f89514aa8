"""What a customer sees of their own case through the private status link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.case import Case, CaseEvent
from chalicelib.domain.messages import message_text
from chalicelib.services.ports import CaseStore


@dataclass(frozen=True)
class CustomerCaseView:
    case: Case
    history: list[CaseEvent]

    def as_dict(self) -> dict[str, Any]:
        case = self.case
        return {
            "case_number": case.case_number,
            "kind": case.kind.value,
            "status": case.status.value,
            "language": case.language.value,
            "created_at": case.created_at.isoformat(),
            "updated_at": case.updated_at.isoformat(),
            "customer": {"name": case.customer.name},
            "order_ref": case.order_ref,
            "product": case.product,
            "serial_no": case.serial_no,
            "purchase_date": case.purchase_date.isoformat() if case.purchase_date else None,
            "description": case.description,
            "history": [
                {
                    "at": event.at.isoformat(),
                    "action": event.action,
                    "messages": [
                        message_text(m["template"], m["values"], case.language)
                        for m in event.told_customer
                    ],
                }
                for event in self.history
            ],
        }


def customer_view(store: CaseStore, status_token: str) -> CustomerCaseView | None:
    case = store.find_case_by_token(status_token)
    if case is None:
        return None
    history = [e for e in store.case_history(case.case_id) if e.visible_to_customer]
    return CustomerCaseView(case=case, history=history)
