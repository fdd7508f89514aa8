"""The actions of the project kinds: installation projects and workshop repairs."""

from __future__ import annotations

from chalicelib.domain.actions import Action
from chalicelib.domain.case import Case

PROJECT_ACTIONS: tuple[Action, ...] = ()


def project_work_left(case: Case) -> list[str]:
    """What still stands between a project case and 'resolved'."""
    return []
