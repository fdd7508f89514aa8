"""The registry of sold units on the real table (moto): a workbook imported from the
command line or the staff API, one unit registered or read over HTTP.

What staff notice: the good rows are registered with their planned visits, every bad row
is listed with its row number and all its reasons, and nothing of a bad row is stored; a
column the registry does not know is ignored and the report says so; serial numbers Excel
cannot hold as numbers are refused, dates typed in the usual Chinese ways are taken.
The clock stands at 1 June 2026, 10:00 in Shanghai.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from openpyxl import Workbook

from chalicelib import bootstrap
from chalicelib.adapters.unit_workbook import XLSX_TYPE, WorkbookError, read_units, template
from chalicelib.cli import main
from chalicelib.domain.staff import Role
from chalicelib.domain.units import Unit
from chalicelib.services import units as registry
from chalicelib.settings import get_policies
from tests.integration.support import all_items
from tests.integration.test_staff_api import body, call, staff_token

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DEALERS = """
[field_service.dealers.east]
name = "East China Forklift Service"
regions = ["Zhejiang", "Jiangsu"]
"""

HEADINGS = ["序列号", "型号", "客户名称", "customer_email", "电话", "地址", "代理商",
            "销售日期", "验收日期", "保修月数", "保修小时", "保养合同"]


def good(serial: str, **changes: Any) -> list[Any]:
    """A row under HEADINGS: a forklift accepted in January with 12 months or 1,500 h."""
    cells: dict[str, Any] = {
        "序列号": serial, "型号": "CPD30", "客户名称": "宁波港机械",
        "customer_email": "service@ningbo-port.example.com", "电话": "0574-8765 4321",
        "地址": "宁波市北仑区", "代理商": "east", "销售日期": datetime(2026, 1, 10),
        "验收日期": datetime(2026, 1, 15), "保修月数": 12, "保修小时": 1500, "保养合同": "否",
    }
    cells.update(changes)
    return [cells[heading] for heading in HEADINGS]


def xlsx(headings: list[Any], *rows: list[Any] | None) -> bytes:
    """A workbook as staff make it; None is an empty row."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(headings)
    for row in rows:
        sheet.append(row or [])
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.fixture
def registry_desk(aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The company has one dealer, 'east'; the clock stands still at NOW."""
    policies = tmp_path / "policies.toml"
    policies.write_text(DEALERS, encoding="utf-8")
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(policies))
    bootstrap.reset()
    with time_machine.travel(NOW, tick=False):
        yield


def register_old_unit() -> None:
    bootstrap.unit_store().add_units(
        [Unit(serial_no="OLD-1", model="CPD15", customer_name="Old Customer",
              customer_email="old@example.com", sold_on=date(2024, 3, 1))],
        {}, NOW,
    )


def items_of(serial: str) -> list[dict[str, Any]]:
    return [item for item in all_items() if item["PK"]["S"] == f"UNIT#{serial}"]


def visits_of(serial: str) -> list[str]:
    return sorted(item["SK"]["S"].removeprefix("VISIT#") for item in items_of(serial)
                  if item["SK"]["S"].startswith("VISIT#"))


MIXED = xlsx(
    HEADINGS,
    good("FL-1"),
    None,  # an empty row is skipped
    good(None, 型号="no serial"),
    good("FL-1", 型号="CPD30 again"),
    good("FL-2", 销售日期="2026-06-20"),
    good("FL-3", 客户名称='=HYPERLINK("http://evil.example","点击")'),
    good("FL-4", 代理商="west"),
    good("OLD-1"),
    good("FL-5", 销售日期="2026-02-01", 验收日期=None, 保修月数=None, 保修小时=None,
         代理商=None, 保养合同="是"),
)
REJECTED = {
    4: [("serial_no", "is missing")],
    5: [("serial_no", "duplicate: row 2 has this serial number (each unit is registered once)")],
    6: [("sold_on", "cannot be in the future"),
        ("accepted_on", "cannot be before the sale (sold_on)")],
    7: [("customer_name",
         'a formula (=HYPERLINK("http://evil.example","点击")), not a value: type the value '
         "itself")],
    8: [("dealer", "unknown dealer 'west' (known: east)")],
    9: [("serial_no", "registered already")],
}


def rejected_of(report: dict[str, Any]) -> dict[int, list[tuple[str, str]]]:
    return {
        row["row"]: [(p["field"], p["message"]) for p in row["problems"]]
        for row in report["rejected"]
    }


# -- the workbook --------------------------------------------------------------------------


def test_a_workbook_is_read_with_its_row_numbers_headings_in_either_language() -> None:
    sheet = read_units(MIXED)
    rows = sheet.rows

    assert sheet.warnings == []
    assert [row.number for row in rows] == [2, 4, 5, 6, 7, 8, 9, 10]
    first = rows[0].values
    assert first["serial_no"] == "FL-1"
    assert first["customer_email"] == "service@ningbo-port.example.com"
    assert first["sold_on"] == datetime(2026, 1, 10)
    assert rows[4].values["customer_name"].startswith("=HYPERLINK(")


def test_an_unknown_column_and_values_under_no_heading_are_ignored_with_a_warning(
    registry_desk: None,
) -> None:
    workbook = xlsx([*HEADINGS, "notes", None, "保修期"],
                    [*good("FL-1"), "by the gate", "x", "2 years"],
                    [*good("FL-2"), None, None, None])

    sheet = read_units(workbook)

    assert [row.number for row in sheet.rows] == [2, 3]
    assert "notes" not in sheet.rows[0].values
    assert len(sheet.warnings) == 3
    assert sheet.warnings[0].startswith("column 'notes' (column M) is not a registry column: "
                                        "ignored")
    assert sheet.warnings[1].startswith("column '保修期' (column O) is not a registry column")
    assert sheet.warnings[2] == "column N has values but no heading (the first in row 2): " \
        "ignored"
    report = registry.import_units(
        bootstrap.unit_store(), get_policies(), sheet.rows, NOW, date(2026, 6, 1),
        warnings=sheet.warnings,
    )
    assert report.registered == ["FL-1", "FL-2"]
    assert report.as_dict()["warnings"] == sheet.warnings


def test_a_sheet_without_a_required_column_or_not_a_workbook_is_refused() -> None:
    with pytest.raises(WorkbookError, match="no column for: sold_on / 销售日期"):
        read_units(xlsx(["序列号", "型号", "客户", "邮箱"], ["FL-1", "CPD30", "A", "a@b.com"]))
    # A misspelt required heading: the refusal names it.
    with pytest.raises(WorkbookError) as misspelt:
        read_units(xlsx(["序列号", "型号", "客户", "邮箱", "sale date"],
                        ["FL-1", "CPD30", "A", "a@b.com", "2026-01-10"]))
    assert str(misspelt.value) == (
        "the sheet has no column for: sold_on / 销售日期 (the headings 'sale date' (column E) "
        "are not ones the registry knows)")
    with pytest.raises(WorkbookError, match="columns A and B are both serial_no"):
        read_units(xlsx(["serial", "序列号", "model"], ["FL-1", "FL-1", "CPD30"]))
    with pytest.raises(WorkbookError, match="not an Excel workbook"):
        read_units(b"serial_no,model\nFL-1,CPD30\n")


def test_the_template_has_every_column_and_reads_back_as_an_empty_registry(
    tmp_path: Path,
) -> None:
    out = tmp_path / "units.xlsx"

    assert main(["units", "template", str(out)]) == 0
    assert read_units(out).rows == []
    assert out.read_bytes()[:2] == b"PK"
    assert template()[:2] == b"PK"


# -- importing -----------------------------------------------------------------------------


def test_good_rows_land_with_their_visits_and_bad_rows_leave_nothing(registry_desk: None) -> None:
    register_old_unit()
    policies = get_policies()

    report = registry.import_units(
        bootstrap.unit_store(), policies, read_units(MIXED).rows, NOW, date(2026, 6, 1)
    ).as_dict()

    assert report["serial_nos"] == ["FL-1", "FL-5"]
    assert rejected_of(report) == REJECTED
    # FL-1: 12 months from acceptance, quarterly, then one a year after (April is past).
    assert visits_of("FL-1") == ["2026-07-15", "2026-10-15", "2027-01-15", "2028-01-15"]
    # FL-5: the default 24 months from the sale.
    assert visits_of("FL-5")[0] == "2026-08-01"
    assert report["visits_planned"] == len(visits_of("FL-1")) + len(visits_of("FL-5"))
    for serial in ("FL-2", "FL-3", "FL-4"):
        assert items_of(serial) == []
    old = bootstrap.unit_store().get_unit("OLD-1")
    assert old is not None and old.model == "CPD15"
    fl5 = bootstrap.unit_store().get_unit("FL-5")
    assert fl5 is not None and fl5.maintenance_contract and fl5.warranty_months == 24


def test_serial_numbers_excel_cannot_hold_as_numbers_are_refused_with_what_to_do(
    registry_desk: None,
) -> None:
    rows = read_units(xlsx(
        HEADINGS,
        good(123456789012345678),  # typed as a number: Excel keeps 15 of its digits
        good(1.23456789012346e17),  # as Excel itself saves such a number
        good(1.5),
        good(123456789012345),  # 15 digits: exact
        good(20260001.0),
    )).rows

    report = registry.import_units(bootstrap.unit_store(), get_policies(), rows, NOW,
                                   date(2026, 6, 1))

    assert report.registered == ["123456789012345", "20260001"]
    refused = {r.row: (r.serial_no, r.problems) for r in report.rejected}
    assert set(refused) == {2, 3, 4}
    for serial, problems in refused.values():
        assert serial is None  # never a number that may not be the one typed
        [problem] = problems
        assert problem.field == "serial_no"
        assert "format the column as text" in problem.message
    assert refused[2][1][0].message.startswith("a number of 18 digits: Excel keeps only 15")
    assert refused[4][1][0].message.startswith("the number 1.5 is not a serial number")
    assert sorted(item["PK"]["S"] for item in all_items() if item["SK"]["S"] == "UNIT") == [
        "UNIT#123456789012345", "UNIT#20260001"]


@pytest.mark.parametrize(
    ("typed", "day"),
    [("2026/01/10", date(2026, 1, 10)), ("2026-1-5", date(2026, 1, 5)),
     ("2026年1月15日", date(2026, 1, 15)), ("2026年 3月 1日", date(2026, 3, 1)),
     ("2026-01-10", date(2026, 1, 10)), (datetime(2026, 2, 3), date(2026, 2, 3))],
)
def test_dates_are_taken_as_staff_type_them(registry_desk: None, typed: Any, day: date) -> None:
    rows = read_units(xlsx(HEADINGS, good("FL-1", 销售日期=typed, 验收日期=None))).rows

    report = registry.import_units(bootstrap.unit_store(), get_policies(), rows, NOW,
                                   date(2026, 6, 1))

    assert report.registered == ["FL-1"], report.rejected
    unit = bootstrap.unit_store().get_unit("FL-1")
    assert unit is not None and unit.sold_on == day


@pytest.mark.parametrize("typed", ["2026/02/30", "10/01/2026", "2026/1", "2026年13月1日"])
def test_a_date_that_is_not_one_is_refused_with_the_ways_to_write_it(
    registry_desk: None, typed: str
) -> None:
    rows = read_units(xlsx(HEADINGS, good("FL-1", 销售日期=typed, 验收日期=None))).rows

    report = registry.import_units(bootstrap.unit_store(), get_policies(), rows, NOW,
                                   date(2026, 6, 1))

    assert [(p.field, p.message) for p in report.rejected[0].problems] == [
        ("sold_on", "not a date: use a date cell, or write it as YYYY-MM-DD (or YYYY/MM/DD, "
                    "YYYY年M月D日)")]
    assert items_of("FL-1") == []


def test_a_unit_registered_meanwhile_is_refused_by_the_table_and_blocks_no_other(
    registry_desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bootstrap.unit_store()
    rows = read_units(xlsx(HEADINGS, good("FL-1"), good("FL-2"), good("FL-3"))).rows
    # Someone registers FL-2 after the import looked it up and before it writes.
    monkeypatch.setattr(store, "registered", lambda serials: set())
    store.add_units([Unit(serial_no="FL-2", model="other", customer_name="Other",
                          customer_email="other@example.com", sold_on=date(2025, 1, 1))],
                    {}, NOW)

    report = registry.import_units(store, get_policies(), rows, NOW, date(2026, 6, 1))

    assert report.registered == ["FL-1", "FL-3"]
    assert [(r.row, r.serial_no) for r in report.rejected] == [(3, "FL-2")]
    assert len(visits_of("FL-1")) == len(visits_of("FL-3")) == 4
    assert visits_of("FL-2") == []
    unit = store.get_unit("FL-2")
    assert unit is not None and unit.model == "other"


def test_the_command_line_import_reports_each_rejected_row_and_fails(
    registry_desk: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_old_unit()
    workbook = tmp_path / "units.xlsx"
    workbook.write_bytes(MIXED)

    code = main(["units", "import", str(workbook)])

    out = capsys.readouterr().out
    assert code == 1
    assert f"{workbook}: 2 registered with 12 planned visits, 6 rejected" in out
    assert "row 4\n  serial_no: is missing\n" in out
    assert "row 6 (FL-2)\n  sold_on: cannot be in the future\n  accepted_on: " in out
    assert "row 8 (FL-4)\n  dealer: unknown dealer 'west' (known: east)\n" in out
    assert "row 9 (OLD-1)\n  serial_no: registered already\n" in out
    assert visits_of("FL-1") and items_of("FL-4") == []


def test_a_dry_run_checks_everything_and_registers_nothing(
    registry_desk: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "units.xlsx"
    workbook.write_bytes(xlsx(HEADINGS, good("FL-1"), good("FL-2")))

    code = main(["units", "import", str(workbook), "--dry-run"])

    assert code == 0
    assert "2 would be registered (dry run) with 8 planned visits, 0 rejected" in (
        capsys.readouterr().out
    )
    assert items_of("FL-1") == items_of("FL-2") == []


def test_an_unreadable_workbook_stops_the_import_with_the_reason(
    registry_desk: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "units.xlsx"
    workbook.write_bytes(xlsx(["serial", "colour"], ["FL-1", "red"]))

    assert main(["units", "import", str(workbook)]) == 2
    assert "no column for: model / 型号, customer_name" in capsys.readouterr().err


def test_the_command_line_import_says_what_it_ignored(
    registry_desk: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "units.xlsx"
    workbook.write_bytes(xlsx([*HEADINGS, "备注"], [*good("FL-1"), "by the gate"]))

    assert main(["units", "import", str(workbook)]) == 0

    out = capsys.readouterr().out
    assert f"{workbook}: warning: column '备注' (column M) is not a registry column: " \
        "ignored" in out
    assert f"{workbook}: 1 registered with 4 planned visits, 0 rejected" in out


def test_the_command_line_shows_a_unit_its_warranty_end_and_visits_to_come(
    registry_desk: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "units.xlsx"
    workbook.write_bytes(xlsx(HEADINGS, good("FL-1")))
    main(["units", "import", str(workbook)])
    capsys.readouterr()

    assert main(["units", "show", "FL-1"]) == 0
    out = capsys.readouterr().out
    assert "warranty_ends_on      2027-01-15" in out
    assert "planned_visits        2026-07-15, 2026-10-15, 2027-01-15, 2028-01-15" in out
    assert "customer_name         宁波港机械" in out
    assert main(["units", "show", "NOPE-1"]) == 1


# -- the staff API -------------------------------------------------------------------------


def unit_body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "serial_no": "SG-7", "model": "KYN28 switchgear", "product_line": "switchgear",
        "customer_name": "Acme Plant", "customer_email": "plant@acme.example.com",
        "customer_phone": "+86 21 5555 0000", "address": "Shanghai", "dealer": "east",
        "sold_on": "2026-03-01", "accepted_on": "2026-03-20", "warranty_months": 24,
    }
    data.update(changes)
    return data


def test_staff_register_a_unit_and_read_it_back(client: Any, registry_desk: None) -> None:
    token = staff_token(Role.AGENT)

    created = call(client, "post", "/api/staff/units", token, unit_body())

    assert created.status_code == 201, created.body
    registered = body(created)
    assert registered["warranty_ends_on"] == "2028-03-20"
    assert registered["planned_visits"][:2] == ["2026-06-20", "2026-09-20"]
    assert registered["planned_visits"][-1] == "2029-03-20"
    assert registered["unit"]["registered_at"].startswith("2026-06-01T02:00")
    read = call(client, "get", "/api/staff/units/SG-7", token)
    assert read.status_code == 200
    assert body(read) == registered
    assert call(client, "get", "/api/staff/units/SG-8", token).status_code == 404


def test_a_bad_unit_is_400_naming_each_field_and_a_registered_serial_409(
    client: Any, registry_desk: None
) -> None:
    token = staff_token(Role.AGENT)

    bad = call(client, "post", "/api/staff/units", token, unit_body(
        customer_email="nope", sold_on="2026-13-01", colour="red"))
    assert bad.status_code == 400
    assert {e["field"] for e in body(bad)["errors"]} == {"customer_email", "sold_on", "colour"}
    rules = call(client, "post", "/api/staff/units", token, unit_body(
        sold_on="2026-07-01", accepted_on="2026-06-01", dealer="west"))
    assert rules.status_code == 400
    assert {(e["field"], e["message"]) for e in body(rules)["errors"]} == {
        ("sold_on", "cannot be in the future"),
        ("accepted_on", "cannot be before the sale (sold_on)"),
        ("dealer", "unknown dealer 'west' (known: east)"),
    }
    assert call(client, "post", "/api/staff/units", token, unit_body()).status_code == 201
    again = call(client, "post", "/api/staff/units", token, unit_body(model="other"))
    assert again.status_code == 409
    assert body(again)["errors"][0]["field"] == "serial_no"
    assert items_of("SG-7")[0]["unit"]["M"]["model"]["S"] == "KYN28 switchgear"


def test_the_unit_routes_need_a_staff_token(client: Any, registry_desk: None) -> None:
    assert call(client, "post", "/api/staff/units", None, unit_body()).status_code == 401
    assert call(client, "get", "/api/staff/units/SG-7", None).status_code == 401
    response = client.http.post("/api/staff/units/import", headers={"Content-Type": XLSX_TYPE},
                                body=MIXED)
    assert response.status_code == 401
    assert items_of("SG-7") == [] and items_of("FL-1") == []


def post_workbook(client: Any, token: str, raw: bytes, content_type: str = XLSX_TYPE) -> Any:
    return client.http.post(
        "/api/staff/units/import",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
        body=raw,
    )


def test_staff_import_a_workbook_over_http(client: Any, registry_desk: None) -> None:
    register_old_unit()
    token = staff_token(Role.AGENT)

    response = post_workbook(client, token, MIXED)

    assert response.status_code == 200, response.body
    report = json.loads(response.body)
    assert report["registered"] == 2
    assert report["serial_nos"] == ["FL-1", "FL-5"]
    assert rejected_of(report) == REJECTED
    assert report["rows"] == 8
    assert report["warnings"] == []
    assert items_of("FL-3") == []
    noted = post_workbook(client, token, xlsx([*HEADINGS, "notes"], [*good("FL-9"), "x"]))
    assert noted.status_code == 200
    assert json.loads(noted.body)["serial_nos"] == ["FL-9"]
    [warning] = json.loads(noted.body)["warnings"]
    assert warning.startswith("column 'notes' (column M) is not a registry column: ignored")


def test_a_workbook_that_cannot_be_read_too_large_or_of_another_type_is_refused(
    client: Any, registry_desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = staff_token(Role.AGENT)

    unknown = post_workbook(client, token, xlsx(["serial_no", "colour"], ["FL-1", "red"]))
    assert unknown.status_code == 400
    message = body(unknown)["errors"][0]["message"]
    assert "the sheet has no column for: model / 型号" in message
    assert "'colour' (column B) are not ones the registry knows" in message
    assert post_workbook(client, token, b"not a workbook").status_code == 400
    assert post_workbook(client, token, b"\0" * (5 * 1024 * 1024 + 1)).status_code == 413
    assert post_workbook(client, token, MIXED, "text/csv").status_code == 415
    monkeypatch.setattr("chalicelib.web.unit_routes.MAX_WORKBOOK_UNITS", 2)
    three = xlsx(HEADINGS, good("FL-1"), good("FL-2"), good("FL-3"))
    too_many = post_workbook(client, token, three)
    assert too_many.status_code == 400
    assert "more than 2 units" in body(too_many)["errors"][0]["message"]
    assert items_of("FL-1") == []
