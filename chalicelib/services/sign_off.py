"""The customer's signature through their private link: consent to a fee quote before paid
work starts, and confirmation of the service form (售后服务处理单) once the work is done.

Opening the link (GET) records nothing; only the form's POST signs, and it signs only the
document the customer was shown (a page left open while staff changed the case signs
nothing and shows the document as it is now).
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.case import Case
from chalicelib.domain.field_actions import sign_on_link, what_to_sign
from chalicelib.services.ports import CaseStore, StaleCase, WriteConflict

RETRIES = 3


class NotWhatWasShown(Exception):
    """The document waiting for a signature is not the one the customer signed."""


def sign(
    store: CaseStore, case: Case, shown: str | None, name: str, comment: str | None,
    now: datetime,
) -> Case:
    """Sign what waits for the customer; a staff change at the same moment does not lose
    the signature (it is applied again to the case as it is now, if the same document
    still waits). Raises ActionRefused for a blank name or nothing to sign."""
    for attempt in range(1, RETRIES + 1):
        if shown is not None and what_to_sign(case) not in (None, shown):
            raise NotWhatWasShown(shown)
        change = sign_on_link(case, name, comment, now)
        try:
            store.save_change(change.case, change.event, [], case.version, previous=case)
            return change.case
        except StaleCase as stale:
            if attempt == RETRIES:
                raise
            case = stale.case
        except WriteConflict:
            fresh = store.get_case(case.case_id) if attempt < RETRIES else None
            if fresh is None:
                raise
            case = fresh
    raise AssertionError("unreachable: the last attempt returns or raises")
