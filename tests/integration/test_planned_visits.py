"""Planned maintenance (定期保养): each planned visit of a registered unit becomes one
maintenance_visit case for its customer, on its day, however often the hourly schedule runs,
when two runs overlap, or when a run dies between opening the case and taking the visit off.

The clock only moves when told (time_machine); the schedule is invoked as Lambda invokes it.
The unit below was accepted on 15 January 2026 with a 12-month warranty and registered on
2 March: its visits are 15 April, 15 July, 15 October 2026, 15 January 2027 (the warranty's
end) and 15 January 2028 (the yearly visit after it), each due at 09:00 in Shanghai; each
yearly visit that becomes a case plans the next, for as long as the unit is in service.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
from chalicelib.domain.units import Retirement
from chalicelib.services.units import VisitsReport, open_planned_visits
from chalicelib.settings import get_policies, get_settings
from tests.integration.test_staff_api import body, call, staff_token

SHANGHAI = ZoneInfo("Asia/Shanghai")
CUSTOMER = "maintenance@harbour-logistics.example.com"


def sh(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local Shanghai wall-clock time, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


class Desk:
    def __init__(self, client: Any) -> None:
        self.client = client
        with time_machine.travel(sh(2026, 3, 2, 10), tick=False):
            self.token = staff_token(Role.AGENT)
            response = call(client, "post", "/api/staff/units", self.token, {
                "serial_no": "FL-2026-0042", "model": "CPD30 forklift",
                "customer_name": "Harbour Logistics", "customer_email": CUSTOMER,
                "customer_phone": "0574 8888 1234", "address": "Beilun, Ningbo",
                "sold_on": "2026-01-10", "accepted_on": "2026-01-15",
                "warranty_months": 12, "warranty_hours": 1500,
            })
        assert response.status_code == 201, response.body

    def run_schedule(self, when: datetime) -> dict[str, int]:
        """The hourly schedule, at ``when``."""
        with time_machine.travel(when, tick=False):
            event = self.client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={},
                resources=["arn:aws:events:eu-central-1:123456789012:rule/visits"],
            )
            payload: dict[str, int] = self.client.lambda_.invoke(
                "open_planned_visits", event
            ).payload
            return payload

    def visit_cases(self) -> list[dict[str, Any]]:
        """The customer's maintenance visits, as staff see them in the customer file."""
        found = body(call(self.client, "get", f"/api/staff/customers?email={CUSTOMER}",
                          self.token))["customers"]
        if not found:
            return []
        customer_id = found[0]["customer_id"]
        cases: list[dict[str, Any]] = body(call(
            self.client, "get", f"/api/staff/customers/{customer_id}", self.token))["cases"]
        return [case for case in cases if case["kind"] == "maintenance_visit"]

    def visits_to_come(self) -> list[str]:
        unit = body(call(self.client, "get", "/api/staff/units/FL-2026-0042", self.token))
        visits: list[str] = unit["planned_visits"]
        return visits


@pytest.fixture
def desk(client: Any) -> Desk:
    return Desk(client)


@pytest.fixture
def moto_serialised(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto applies each call (a transaction too) atomically, as DynamoDB does; the runs
    themselves still go side by side."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", serialised)
    yield


def test_a_visit_becomes_a_case_for_the_customer_at_the_opening_of_its_day(
    desk: Desk,
) -> None:
    assert desk.visits_to_come()[:2] == ["2026-04-15", "2026-07-15"]
    assert desk.run_schedule(sh(2026, 4, 14, 23))["due"] == 0
    assert desk.run_schedule(sh(2026, 4, 15, 8, 59))["due"] == 0
    assert desk.visit_cases() == []

    ran = desk.run_schedule(sh(2026, 4, 15, 9, 0))

    assert ran == {"due": 1, "opened": 1, "lost_races": 0, "failed": 0, "retired": 0}
    [case] = desk.visit_cases()
    assert case["serial_no"] == "FL-2026-0042"
    assert case["product"] == "CPD30 forklift"
    assert case["customer"]["name"] == "Harbour Logistics"
    assert case["channel"] == "phone"
    assert case["description"].startswith("Planned maintenance visit 2026-04-15 (定期保养)")
    assert "Beilun, Ningbo" in case["description"]
    read = body(call(desk.client, "get", f"/api/staff/cases/{case['case_id']}", desk.token))
    assert read["history"][-1]["actor"] == "system:planned-visits"
    assert [e["template"] for e in read["emails"]] == ["case_received"]
    assert desk.visits_to_come()[0] == "2026-07-15"


def test_running_again_opens_nothing_more(desk: Desk) -> None:
    desk.run_schedule(sh(2026, 4, 15, 9, 30))

    again = desk.run_schedule(sh(2026, 4, 15, 10, 30))

    assert again["due"] == 0
    assert len(desk.visit_cases()) == 1


def test_a_late_run_opens_each_missed_visit_once(desk: Desk) -> None:
    ran = desk.run_schedule(sh(2026, 10, 16, 9))

    assert ran["opened"] == 3
    descriptions = sorted(case["description"].splitlines()[0] for case in desk.visit_cases())
    assert descriptions == [
        f"Planned maintenance visit 2026-{month}-15 (定期保养)" for month in ("04", "07", "10")
    ]
    assert desk.visits_to_come() == ["2027-01-15", "2028-01-15"]


def test_a_run_that_died_after_opening_the_case_is_finished_by_the_next_one(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bootstrap.unit_store()
    real_visit_done = store.visit_done

    def die(*args: Any) -> bool:
        raise TimeoutError("the Lambda ran out of time")

    monkeypatch.setattr(store, "visit_done", die)
    with time_machine.travel(sh(2026, 4, 15, 9), tick=False), pytest.raises(TimeoutError):
        open_planned_visits(store, bootstrap.case_store(), get_settings(), get_policies(),
                            sh(2026, 4, 15, 9))
    assert len(desk.visit_cases()) == 1
    monkeypatch.setattr(store, "visit_done", real_visit_done)

    ran = desk.run_schedule(sh(2026, 4, 15, 10))

    assert ran["opened"] == 1
    assert len(desk.visit_cases()) == 1
    assert desk.visits_to_come()[0] == "2026-07-15"


def test_two_runs_at_the_same_moment_open_one_case(
    desk: Desk, moto_serialised: None
) -> None:
    when = sh(2026, 4, 15, 9)
    units, cases = bootstrap.unit_store(), bootstrap.case_store()
    settings, policies = get_settings(), get_policies()
    barrier = threading.Barrier(2)
    reports: list[VisitsReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(open_planned_visits(units, cases, settings, policies, when))
        except BaseException as error:  # reported in the test thread
            errors.append(error)

    with time_machine.travel(when, tick=False):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    assert len(reports) == 2
    assert sum(r.opened for r in reports) == 1
    assert len(desk.visit_cases()) == 1


def test_the_command_line_opens_the_visits_due_now(
    desk: Desk, aws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.cli import main

    with time_machine.travel(sh(2026, 4, 15, 11), tick=False):
        assert main(["visits"]) == 0

    assert '"opened": 1' in capsys.readouterr().out
    assert len(desk.visit_cases()) == 1


# -- after the warranty: a visit once a year, for as long as the unit is in service --------


def visit_days(desk: Desk) -> list[str]:
    return sorted(case["description"].splitlines()[0].split()[3]
                  for case in desk.visit_cases())


def test_after_the_warranty_a_visit_comes_every_year(desk: Desk) -> None:
    assert desk.run_schedule(sh(2027, 1, 15, 9))["opened"] == 4
    assert desk.visits_to_come() == ["2028-01-15"]

    for year in (2028, 2029, 2030):
        ran = desk.run_schedule(sh(year, 1, 15, 9))
        assert ran["opened"] == 1
        assert desk.visits_to_come() == [f"{year + 1}-01-15"]
        assert desk.run_schedule(sh(year, 1, 15, 10))["due"] == 0  # nothing twice

    assert visit_days(desk) == [
        "2026-04-15", "2026-07-15", "2026-10-15", "2027-01-15", "2028-01-15", "2029-01-15",
        "2030-01-15",
    ]


def test_a_yearly_visit_is_opened_once_and_plans_one_next_when_runs_overlap(
    desk: Desk, moto_serialised: None
) -> None:
    desk.run_schedule(sh(2027, 1, 15, 9))
    when = sh(2028, 1, 15, 9)
    units, cases = bootstrap.unit_store(), bootstrap.case_store()
    settings, policies = get_settings(), get_policies()
    barrier = threading.Barrier(2)
    reports: list[VisitsReport] = []

    def run() -> None:
        barrier.wait(timeout=10)
        reports.append(open_planned_visits(units, cases, settings, policies, when))

    with time_machine.travel(when, tick=False):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sum(r.opened for r in reports) == 1
    assert visit_days(desk).count("2028-01-15") == 1
    assert desk.visits_to_come() == ["2029-01-15"]


def test_a_run_that_died_on_a_yearly_visit_is_finished_and_plans_the_next_once(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.run_schedule(sh(2027, 1, 15, 9))
    store = bootstrap.unit_store()
    real_visit_done = store.visit_done

    def die(*args: Any) -> bool:
        raise TimeoutError("the Lambda ran out of time")

    monkeypatch.setattr(store, "visit_done", die)
    with time_machine.travel(sh(2028, 1, 15, 9), tick=False), pytest.raises(TimeoutError):
        open_planned_visits(store, bootstrap.case_store(), get_settings(), get_policies(),
                            sh(2028, 1, 15, 9))
    assert desk.visits_to_come() == ["2028-01-15"]  # still to do: no next one yet
    monkeypatch.setattr(store, "visit_done", real_visit_done)

    assert desk.run_schedule(sh(2028, 1, 15, 10))["opened"] == 1

    assert visit_days(desk).count("2028-01-15") == 1
    assert desk.visits_to_come() == ["2029-01-15"]


def test_a_retired_unit_opens_no_more_visits(desk: Desk) -> None:
    desk.run_schedule(sh(2026, 4, 15, 9))
    with time_machine.travel(sh(2026, 5, 2, 11), tick=False):
        boss = staff_token(Role.SUPERVISOR)
        retired = call(desk.client, "delete", "/api/staff/units/FL-2026-0042", boss,
                       {"reason": "scrapped after a fire"})
    assert retired.status_code == 200, retired.body
    assert desk.visits_to_come() == []

    assert desk.run_schedule(sh(2030, 1, 15, 9))["due"] == 0
    assert visit_days(desk) == ["2026-04-15"]


def test_a_visit_left_on_the_schedule_of_a_retired_unit_is_taken_off_without_a_case(
    desk: Desk,
) -> None:
    store = bootstrap.unit_store()
    found = store.unit_with_version("FL-2026-0042")
    assert found is not None
    unit, version = found
    # Retired by a write that left its visits (as a visit planned at the very moment of
    # the retirement would be left).
    retired = unit.model_copy(update={"retired": Retirement(
        at=sh(2026, 5, 1, 10), by="staff:boss", reason="sold on")})
    assert store.replace_unit(retired, version, sh(2026, 5, 1, 10))

    ran = desk.run_schedule(sh(2026, 10, 16, 9))

    assert ran == {"due": 3, "opened": 0, "lost_races": 0, "failed": 0, "retired": 3}
    assert desk.visit_cases() == []
    assert store.pending_visits("FL-2026-0042") == [date(2027, 1, 15), date(2028, 1, 15)]
