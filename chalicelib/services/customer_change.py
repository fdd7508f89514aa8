"""Saving a change the customer makes through their private link (a rating, a signature).

A staff change to the same case at the same moment is no reason to lose what the customer
did: the change is made again on the case as it is now, a few times at most.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.actions import Change
from chalicelib.domain.case import Case
from chalicelib.services.ports import CaseStore, StaleCase, WriteConflict

RETRIES = 3


def save_customer_change(
    store: CaseStore, case: Case, change_for: Callable[[Case], Change]
) -> Case:
    """Save ``change_for(case)``; on a stale version or a write conflict, make it again on
    the case as it is now. ``change_for`` may refuse (raise) on the fresh case."""
    for attempt in range(1, RETRIES + 1):
        change = change_for(case)
        try:
            store.save_change(change.case, change.event, [], case.version, previous=case)
            return change.case
        except StaleCase as stale:
            if attempt == RETRIES:
                raise
            case = stale.case  # the case as it is now comes with the refusal
        except WriteConflict:
            fresh = store.get_case(case.case_id) if attempt < RETRIES else None
            if fresh is None:
                raise
            case = fresh
    raise AssertionError("unreachable: the last attempt returns or raises")
