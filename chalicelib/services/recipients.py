"""Who internal e-mails go to: staff by role (those with an e-mail on file), and the
service centre's shared mailbox. The staff list is read once per run, on first need."""

from __future__ import annotations

from typing import Protocol

from chalicelib.domain.staff import Role, StaffMember
from chalicelib.settings import Settings

# Reminders go up to these (主管, 售服中心主任); the daily summary too.
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.SERVICE_DIRECTOR})
# The monthly report goes to the managers.
MANAGERS = frozenset(
    {Role.SERVICE_DIRECTOR, Role.SERVICE_VP, Role.QA_MANAGER, Role.SUPPLY_VP, Role.SALES_VP}
)

Address = tuple[str, str]  # (name, e-mail address)


class StaffDirectory(Protocol):
    def list_staff(self) -> list[StaffMember]: ...


class Recipients:
    def __init__(self, store: StaffDirectory, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._members: list[StaffMember] | None = None

    @property
    def members(self) -> list[StaffMember]:
        """Every active member of staff (read once)."""
        if self._members is None:
            self._members = [m for m in self._store.list_staff() if m.active]
        return self._members

    @property
    def staff(self) -> list[StaffMember]:
        """Those who can be e-mailed."""
        return [m for m in self.members if m.email]

    def centre(self) -> list[Address]:
        address = self._settings.service_centre_email
        return [(self._settings.email_signature, address)] if address else []

    def with_roles(self, roles: frozenset[Role]) -> list[Address]:
        return [(m.name, m.email) for m in self.staff if m.role in roles and m.email]

    def member(self, staff_id: str | None) -> list[Address]:
        return [(m.name, m.email) for m in self.staff if m.staff_id == staff_id and m.email]
