"""Correcting and retiring registered units, and the hour meter's readings, on the real
table (moto), through the staff API and the command line.

What staff notice: a correction shows at once (version one higher); when the sale or
acceptance date or the warranty terms change, the visits still to come move with them in
the same write; what decides the warranty is a manager's correction (an agent is refused,
403, naming the field); a bad value is a 400 naming it and nothing changes; a change made
on a stale read is a 409; a retired unit is kept, marked who / when / why, its visits gone.
The clock stands at 1 June 2026, 10:00 in Shanghai unless a test moves it.
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
from chalicelib.cli import main
from chalicelib.domain.staff import Role
from chalicelib.domain.units import warranty_standing
from chalicelib.services import units as registry
from chalicelib.settings import get_policies
from tests.integration.support import all_items
from tests.integration.test_staff_api import body, call, staff_token

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DEALERS = """
[field_service.dealers.east]
name = "East China Forklift Service"
regions = ["Zhejiang", "Jiangsu"]

[field_service.dealers.north]
name = "North China Forklift Service"
regions = ["Beijing"]
"""
SERIAL = "SG-7"
PATH = f"/api/staff/units/{SERIAL}"
# Accepted 20 March 2026, 24 months: quarterly to 20 March 2028, then yearly.
VISITS_24_MONTHS = ["2026-06-20", "2026-09-20", "2026-12-20", "2027-03-20", "2027-06-20",
                    "2027-09-20", "2027-12-20", "2028-03-20", "2029-03-20"]


def sh(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def desk(aws: Path, client: Any, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[Role, str]]:
    """Dealers east and north; the switchgear SG-7 registered by an agent; a token for each
    role the tests need."""
    policies = tmp_path / "policies.toml"
    policies.write_text(DEALERS, encoding="utf-8")
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(policies))
    bootstrap.reset()
    with time_machine.travel(NOW, tick=False):
        tokens = {role: staff_token(role) for role in (
            Role.AGENT, Role.SUPERVISOR, Role.SERVICE_DIRECTOR, Role.FINANCE, Role.TECHNICIAN)}
        created = call(client, "post", "/api/staff/units", tokens[Role.AGENT], {
            "serial_no": SERIAL, "model": "KYN28 switchgear", "product_line": "switchgear",
            "customer_name": "Acme Plant", "customer_email": "plant@acme.example.com",
            "customer_phone": "+86 21 5555 0000", "address": "Shanghai", "dealer": "east",
            "region": "Zhejiang", "sold_on": "2026-03-01", "accepted_on": "2026-03-20",
            "warranty_months": 24,
        })
        assert created.status_code == 201, created.body
        yield tokens


def visits_stored() -> list[str]:
    return sorted(item["SK"]["S"].removeprefix("VISIT#") for item in all_items()
                  if item["PK"]["S"] == f"UNIT#{SERIAL}" and item["SK"]["S"].startswith("VISIT#"))


def read(client: Any, token: str) -> dict[str, Any]:
    response = call(client, "get", PATH, token)
    assert response.status_code == 200
    unit: dict[str, Any] = body(response)
    return unit


def errors_of(response: Any) -> set[tuple[str, str]]:
    return {(e["field"], e["message"]) for e in body(response)["errors"]}


# -- correcting ----------------------------------------------------------------------------


def test_an_agent_corrects_the_dealer_region_and_phone_and_the_visits_stay(
    client: Any, desk: dict[Role, str]
) -> None:
    agent = desk[Role.AGENT]

    changed = call(client, "patch", PATH, agent, {
        "dealer": "north", "region": "Beijing", "customer_phone": None, "version": 1})

    assert changed.status_code == 200, changed.body
    now = read(client, agent)
    assert now == body(changed)
    assert (now["unit"]["dealer"], now["unit"]["region"], now["unit"]["customer_phone"]) == (
        "north", "Beijing", None)
    assert now["version"] == 2
    assert now["planned_visits"] == VISITS_24_MONTHS == visits_stored()


def test_new_warranty_terms_move_the_visits_to_come_in_the_same_write(
    client: Any, desk: dict[Role, str]
) -> None:
    boss = desk[Role.SUPERVISOR]

    shorter = call(client, "patch", PATH, boss, {"warranty_months": 12, "version": 1})

    assert shorter.status_code == 200, shorter.body
    assert body(shorter)["warranty_ends_on"] == "2027-03-20"
    assert body(shorter)["planned_visits"] == [
        "2026-06-20", "2026-09-20", "2026-12-20", "2027-03-20", "2028-03-20"] == visits_stored()

    later = call(client, "patch", PATH, boss, {"accepted_on": "2026-04-01"})

    assert later.status_code == 200, later.body
    assert body(later)["version"] == 3
    assert body(later)["warranty_ends_on"] == "2027-04-01"
    assert visits_stored() == [
        "2026-07-01", "2026-10-01", "2027-01-01", "2027-04-01", "2028-04-01"]


def test_a_visit_due_today_stays_when_the_terms_change(client: Any, desk: dict[Role, str]) -> None:
    with time_machine.travel(sh(2026, 6, 20, 8), tick=False):  # an hour before it opens
        changed = call(client, "patch", PATH, desk[Role.SERVICE_DIRECTOR],
                       {"accepted_on": "2026-04-01", "warranty_months": 12})

    assert changed.status_code == 200, changed.body
    assert visits_stored() == [
        "2026-06-20", "2026-07-01", "2026-10-01", "2027-01-01", "2027-04-01", "2028-04-01"]


def test_what_decides_the_warranty_is_a_managers_correction(
    client: Any, desk: dict[Role, str]
) -> None:
    agent = call(client, "patch", PATH, desk[Role.AGENT],
                 {"warranty_months": 36, "accepted_on": "2026-05-01", "dealer": "north"})
    assert agent.status_code == 403
    assert {field for field, _ in errors_of(agent)} == {"warranty_months", "accepted_on"}
    assert all("service_director, service_vp, supervisor" in m for _, m in errors_of(agent))
    finance = call(client, "patch", PATH, desk[Role.FINANCE], {"dealer": "north"})
    assert finance.status_code == 403
    assert errors_of(finance) == {("role", "a finance does not correct the registry (roles "
                                   "that do: agent, service_director, service_vp, supervisor)")}
    technician = call(client, "delete", PATH, desk[Role.TECHNICIAN], {"reason": "scrapped"})
    assert technician.status_code == 403
    assert call(client, "delete", PATH, desk[Role.AGENT], {"reason": "x"}).status_code == 403

    unit = read(client, desk[Role.AGENT])
    assert unit["version"] == 1
    assert unit["unit"]["warranty_months"] == 24 and unit["unit"]["dealer"] == "east"
    assert unit["unit"]["retired"] is None


def test_a_bad_correction_names_every_field_and_changes_nothing(
    client: Any, desk: dict[Role, str]
) -> None:
    boss = desk[Role.SUPERVISOR]
    before = all_items()

    bad = call(client, "patch", PATH, boss, {
        "customer_email": "nope", "sold_on": "2026-13-01", "warranty_hours": -5})
    assert bad.status_code == 400
    assert {f for f, _ in errors_of(bad)} == {"customer_email", "sold_on", "warranty_hours"}
    rules = call(client, "patch", PATH, boss, {
        "accepted_on": "2026-02-01", "dealer": "west", "hours_read_on": "2026-06-02"})
    assert rules.status_code == 400
    assert errors_of(rules) == {
        ("accepted_on", "cannot be before the sale (sold_on)"),
        ("dealer", "unknown dealer 'west' (known: east, north)"),
        ("hours_read_on", "cannot be in the future"),
    }
    fixed = call(client, "patch", PATH, boss, {"serial_no": "SG-8", "colour": "red",
                                               "registered_at": None})
    assert fixed.status_code == 400
    assert errors_of(fixed) == {
        ("serial_no", "cannot be changed: retire this unit and register the right serial "
                      "number"),
        ("colour", "unknown field"), ("registered_at", "kept by the registry"),
    }
    no_terms = call(client, "patch", PATH, boss, {"warranty_months": None})
    assert errors_of(no_terms) == {("warranty_months", "a unit keeps warranty terms: give "
                                    "warranty_months or warranty_hours")}
    assert errors_of(call(client, "patch", PATH, boss, {})) == {
        ("body", "name at least one field to correct")}
    assert call(client, "patch", PATH, boss, {"model": "x", "version": "1"}).status_code == 400
    assert call(client, "patch", PATH, boss, ["model"]).status_code == 400
    assert call(client, "patch", PATH, boss, {"model": None}).status_code == 400

    assert all_items() == before


def test_an_unknown_unit_is_404(client: Any, desk: dict[Role, str]) -> None:
    boss = desk[Role.SUPERVISOR]

    assert call(client, "patch", "/api/staff/units/SG-9", boss,
                {"dealer": "north"}).status_code == 404
    assert call(client, "delete", "/api/staff/units/SG-9", boss,
                {"reason": "scrapped"}).status_code == 404
    assert call(client, "patch", PATH, None, {"dealer": "north"}).status_code == 401
    assert call(client, "delete", PATH, None, {"reason": "x"}).status_code == 401


def test_a_correction_on_a_stale_read_is_refused_with_the_current_version(
    client: Any, desk: dict[Role, str]
) -> None:
    boss = desk[Role.SUPERVISOR]
    assert call(client, "patch", PATH, boss, {"dealer": "north", "version": 1}).status_code == 200

    stale = call(client, "patch", PATH, boss, {"warranty_months": 12, "version": 1})

    assert stale.status_code == 409
    assert body(stale)["current_version"] == 2
    assert "changed since version 1" in body(stale)["errors"][0]["message"]
    assert read(client, boss)["unit"]["warranty_months"] == 24
    assert len(visits_stored()) == len(VISITS_24_MONTHS)


def test_a_reading_recorded_between_the_read_and_the_write_is_not_lost(
    client: Any, desk: dict[Role, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bootstrap.unit_store()
    real_replace = store.replace_unit
    calls: list[int] = []
    readings = iter([420, 840])

    def hours_come_in_first(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:  # a technician's reading lands just before this write
            assert store.record_operating_hours(SERIAL, next(readings), NOW, "staff:tom")
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(store, "replace_unit", hours_come_in_first)

    # Named a version: the write is refused (409), nothing of it written.
    with pytest.raises(registry.StaleUnit) as refused:
        registry.update_unit(store, get_policies(), SERIAL, {"dealer": "north"}, NOW,
                             role=Role.SUPERVISOR, expected_version=1)
    assert refused.value.current_version == 2
    unit = store.get_unit(SERIAL)
    assert unit is not None and unit.dealer == "east" and unit.operating_hours == 420

    # Named none: applied again to the unit as it is now, the newer reading kept.
    calls.clear()
    view = registry.update_unit(store, get_policies(), SERIAL, {"dealer": "north"}, NOW,
                                role=Role.SUPERVISOR)
    assert len(calls) == 2  # the first write lost, the second went through
    assert view.version == 4
    unit = store.get_unit(SERIAL)
    assert unit is not None and unit.operating_hours == 840 and unit.dealer == "north"


@pytest.fixture
def moto_serialised(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto applies each call (a transaction too) atomically, as DynamoDB does; the threads
    themselves still go side by side."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", serialised)
    yield


def test_two_corrections_of_the_same_version_at_once_one_wins(
    desk: dict[Role, str], moto_serialised: None
) -> None:
    store, policies = bootstrap.unit_store(), get_policies()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def correct(months: int) -> None:
        barrier.wait(timeout=10)
        try:
            registry.update_unit(store, policies, SERIAL, {"warranty_months": months}, NOW,
                                 role=Role.SUPERVISOR, expected_version=1)
            outcomes.append(f"won {months}")
        except registry.StaleUnit:
            outcomes.append("409")

    with time_machine.travel(NOW, tick=False):
        threads = [threading.Thread(target=correct, args=(m,)) for m in (12, 36)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(outcomes)[0] == "409" and sorted(outcomes)[1].startswith("won")
    found = store.unit_with_version(SERIAL)
    assert found is not None and found[1] == 2
    winner = int(sorted(outcomes)[1].split()[1])
    assert found[0].warranty_months == winner
    ends = "2027-03-20" if winner == 12 else "2029-03-20"
    assert visits_stored()[-2] == ends  # the winner's plan, whole


# -- retiring ------------------------------------------------------------------------------


def test_a_retired_unit_is_kept_marked_who_when_why_with_its_visits_gone(
    client: Any, desk: dict[Role, str]
) -> None:
    boss = desk[Role.SUPERVISOR]

    with time_machine.travel(sh(2026, 7, 2, 15), tick=False):
        retired = call(client, "delete", PATH, boss,
                       {"reason": "scrapped after a fire", "version": 1})

    assert retired.status_code == 200, retired.body
    unit = read(client, desk[Role.AGENT])
    assert unit == body(retired)
    assert unit["unit"]["retired"] == {"at": "2026-07-02T07:00:00Z",
                                       "by": "staff:supervisor",
                                       "reason": "scrapped after a fire"}
    assert unit["planned_visits"] == [] == visits_stored()
    assert unit["version"] == 2
    assert unit["unit"]["model"] == "KYN28 switchgear"
    again = call(client, "delete", PATH, boss, {"reason": "again"})
    assert again.status_code == 409
    assert "was retired on 2026-07-02 by staff:supervisor" in body(again)["errors"][0]["message"]
    assert call(client, "patch", PATH, boss, {"dealer": "north"}).status_code == 409
    reregistered = call(client, "post", "/api/staff/units", boss, {
        "serial_no": SERIAL, "model": "other", "customer_name": "B",
        "customer_email": "b@example.com", "sold_on": "2026-01-01"})
    assert reregistered.status_code == 409
    assert read(client, boss) == unit
    born_retired = call(client, "post", "/api/staff/units", boss, {
        "serial_no": "SG-8", "model": "other", "customer_name": "B",
        "customer_email": "b@example.com", "sold_on": "2026-01-01",
        "retired": {"at": "2026-01-02T00:00:00Z", "by": "me", "reason": "x"}})
    assert born_retired.status_code == 400
    assert [e["field"] for e in body(born_retired)["errors"]] == ["retired"]


def test_retiring_needs_a_reason_and_the_current_version(
    client: Any, desk: dict[Role, str]
) -> None:
    boss = desk[Role.SUPERVISOR]

    assert errors_of(call(client, "delete", PATH, boss, None)) == {
        ("reason", "say why the unit is retired (scrapped, sold on, returned, …)")}
    assert call(client, "delete", PATH, boss, {"reason": "  "}).status_code == 400
    assert call(client, "delete", PATH, boss, {"reason": "x", "when": "now"}).status_code == 400
    assert call(client, "delete", PATH, boss, {"reason": "x" * 501}).status_code == 400
    stale = call(client, "delete", PATH, boss, {"reason": "sold on", "version": 7})
    assert stale.status_code == 409 and body(stale)["current_version"] == 1

    assert read(client, boss)["unit"]["retired"] is None
    assert len(visits_stored()) == len(VISITS_24_MONTHS)


# -- the hour meter ------------------------------------------------------------------------


def test_the_hours_only_go_up_and_the_warranty_then_counts_them(desk: dict[Role, str]) -> None:
    store, policies = bootstrap.unit_store(), get_policies()
    boss_fix = registry.update_unit(store, policies, SERIAL, {"warranty_hours": 1500}, NOW,
                                    role=Role.SUPERVISOR)
    assert boss_fix.version == 2
    unit = store.get_unit(SERIAL)
    open_ = warranty_standing(unit, on=date(2026, 6, 1), operating_hours=None,
                              default_months=24)
    assert open_.in_warranty and open_.reasons == ("in_period", "hours_unknown")

    assert store.record_operating_hours(SERIAL, 1200, sh(2026, 6, 1, 10), "staff:tom",
                                        on=date(2026, 6, 1))
    assert not store.record_operating_hours(SERIAL, 900, sh(2026, 6, 2, 10), "staff:ann")
    assert not store.record_operating_hours(SERIAL, 1200, sh(2026, 6, 2, 10), "staff:ann")
    assert registry.record_operating_hours(store, policies, SERIAL, 1600, sh(2026, 6, 3, 7),
                                           "staff:tom")
    assert not store.record_operating_hours("SG-404", 10, NOW, "staff:tom")

    found = store.unit_with_version(SERIAL)
    assert found is not None
    unit, version = found
    assert (unit.operating_hours, unit.hours_read_on, unit.hours_read_by) == (
        1600, date(2026, 6, 3), "staff:tom")  # 07:00 in Shanghai: 2 June in UTC
    assert version == 4
    assert warranty_standing(unit, on=date(2026, 6, 3), operating_hours=None,
                             default_months=24).reasons == ("hours_exceeded",)
    with pytest.raises(ValueError, match="not an hour-meter reading"):
        store.record_operating_hours(SERIAL, -1, NOW, "staff:tom")


def test_two_readings_at_once_leave_the_higher(desk: dict[Role, str],
                                                moto_serialised: None) -> None:
    store = bootstrap.unit_store()
    barrier = threading.Barrier(3)
    results: dict[int, bool] = {}

    def reading(hours: int) -> None:
        barrier.wait(timeout=10)
        results[hours] = store.record_operating_hours(SERIAL, hours, NOW, f"staff:t{hours}")

    threads = [threading.Thread(target=reading, args=(h,)) for h in (700, 650, 720)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    unit = store.get_unit(SERIAL)
    assert unit is not None and unit.operating_hours == 720 and results[720]
    assert unit.hours_read_by == "staff:t720"


# -- the command line ----------------------------------------------------------------------


def test_the_command_line_corrects_and_retires_a_unit(
    desk: dict[Role, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["units", "update", SERIAL, "--dealer", "north", "--warranty-months", "12",
                 "--accepted-on", "2026/3/20", "--maintenance-contract", "是",
                 "--address", "", "--version", "1"]) == 0
    out = capsys.readouterr().out
    assert "dealer                north" in out
    assert "maintenance_contract  True" in out
    assert "address" not in out
    assert "warranty_ends_on      2027-03-20" in out
    assert "planned_visits        2026-06-20, 2026-09-20, 2026-12-20, 2027-03-20, " \
        "2028-03-20" in out
    assert "version               2" in out

    assert main(["units", "update", SERIAL, "--sold-on", "2030-01-01", "--dealer", "west"]) == 2
    err = capsys.readouterr().err
    assert "sold_on: cannot be in the future" in err
    assert "dealer: unknown dealer 'west' (known: east, north)" in err
    assert main(["units", "update", SERIAL, "--model", "X", "--version", "1"]) == 1
    assert "changed since version 1 (it is at version 2)" in capsys.readouterr().err
    assert main(["units", "update", "SG-404", "--model", "X"]) == 1
    assert "no unit SG-404 in the registry" in capsys.readouterr().err

    assert main(["units", "retire", SERIAL, "--reason", "sold on to a scrap dealer",
                 "--by", "wang"]) == 0
    out = capsys.readouterr().out
    assert "retired" in out and "by cli:wang" in out and "sold on to a scrap dealer" in out
    assert "planned_visits        none to come" in out
    assert visits_stored() == []
    assert main(["units", "retire", SERIAL, "--reason", "again"]) == 1
    assert main(["units", "update", SERIAL, "--model", "X"]) == 1
    assert "was retired" in capsys.readouterr().err


def test_the_command_line_explains_its_unit_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("update", "retire"):
        with pytest.raises(SystemExit) as done:
            main(["units", command, "--help"])
        assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--warranty-months VALUE" in out and "--dealer VALUE" in out
    assert "an empty value ('') clears an optional field" in out
    assert "--reason REASON" in out


# -- the warranty check and the registry ------------------------------------------------------


def report_repair(client: Any) -> dict[str, Any]:
    from tests.integration.support import post_case

    response = post_case(client, {
        "kind": "repair_request", "serial_no": SERIAL, "product": "KYN28 switchgear",
        "customer": {"name": "Acme Plant", "email": "plant@acme.example.com"},
        "description": "The breaker trips at no load.", "language": "en"})
    assert response.status_code == 201, response.body
    case: dict[str, Any] = body(response)
    return case


def check_warranty(client: Any, token: str, case_id: str, params: dict[str, Any]) -> Any:
    version = body(call(client, "get", f"/api/staff/cases/{case_id}", token))["case"]["version"]
    return call(client, "post", f"/api/staff/cases/{case_id}/actions", token,
                {"action": "check_warranty", "version": version, "params": params})


def test_the_hour_reading_of_a_warranty_check_goes_on_the_unit_for_the_next_check(
    client: Any, desk: dict[Role, str]
) -> None:
    boss, technician = desk[Role.SUPERVISOR], desk[Role.TECHNICIAN]
    fixed = call(client, "patch", PATH, boss, {"warranty_hours": 1500, "version": 1})
    assert fixed.status_code == 200, fixed.body
    with time_machine.travel(NOW, tick=False):
        first = report_repair(client)
        checked = check_warranty(client, technician, first["case_id"], {"operating_hours": 1620})
    assert checked.status_code == 200, checked.body
    assert body(checked)["case"]["field_service"]["warranty"]["reasons"] == ["hours_exceeded"]

    unit = read(client, boss)["unit"]
    assert (unit["operating_hours"], unit["hours_read_by"]) == (1620, "staff:technician")

    # A week later, a second fault: nobody reads the meter, the registry remembers.
    with time_machine.travel(sh(2026, 6, 8, 10), tick=False):
        second = report_repair(client)
        again = check_warranty(client, technician, second["case_id"], {})
    assert again.status_code == 200, again.body
    assert body(again)["case"]["field_service"]["warranty"]["in_warranty"] is False
    assert body(again)["case"]["field_service"]["warranty"]["reasons"] == ["hours_exceeded"]


def test_a_retired_unit_cannot_be_checked_for_warranty(
    client: Any, desk: dict[Role, str]
) -> None:
    retired = call(client, "delete", PATH, desk[Role.SUPERVISOR],
                   {"reason": "scrapped", "version": 1})
    assert retired.status_code == 200, retired.body
    with time_machine.travel(NOW, tick=False):
        case = report_repair(client)
        refused = check_warranty(client, desk[Role.TECHNICIAN], case["case_id"], {})

    assert refused.status_code == 400
    assert body(refused)["errors"][0]["field"] == "params.serial_no"
    assert "was retired on" in body(refused)["errors"][0]["message"]
    read_back = body(call(client, "get", f"/api/staff/cases/{case['case_id']}",
                          desk[Role.TECHNICIAN]))["case"]
    assert read_back["version"] == 1 and read_back["field_service"]["warranty"] is None
