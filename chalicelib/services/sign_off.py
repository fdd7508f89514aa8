"""The customer's signature through their private link: consent to a fee quote before paid
work starts, and confirmation of the service form (售后服务处理单) once the work is done.

Opening the link (GET) records nothing; only the form's POST signs, and it signs only the
document the customer was shown (a page left open while staff changed the case signs
nothing and shows the document as it is now).
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.actions import Change
from chalicelib.domain.case import Case
from chalicelib.domain.field_actions import sign_on_link, what_to_sign
from chalicelib.services.customer_change import save_customer_change
from chalicelib.services.ports import CaseStore


class NotWhatWasShown(Exception):
    """The document waiting for a signature is not the one the customer signed."""


def sign(
    store: CaseStore, case: Case, shown: str | None, name: str, comment: str | None,
    now: datetime,
) -> Case:
    """Sign what waits for the customer; a staff change at the same moment does not lose
    the signature (it is applied again to the case as it is now, if the same document
    still waits). Raises ActionRefused for a blank name or nothing to sign."""

    def signed(current: Case) -> Change:
        if shown is not None and what_to_sign(current) not in (None, shown):
            raise NotWhatWasShown(shown)
        return sign_on_link(current, name, comment, now)

    return save_customer_change(store, case, signed)
