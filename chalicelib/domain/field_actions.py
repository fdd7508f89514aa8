"""The field-service and warranty flow's actions (filled in below)."""

from __future__ import annotations

from chalicelib.domain.actions import Action
from chalicelib.domain.case import Case

FIELD_ACTIONS: tuple[Action, ...] = ()


def field_work_left(case: Case) -> list[str]:
    return []
