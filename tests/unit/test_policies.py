"""A company's policies: the defaults, its own file, durations, and clear errors."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib import settings
from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.policies import (
    Duration,
    DurationRange,
    Policies,
    PoliciesError,
    TimeUnit,
    load_policies,
)
from chalicelib.domain.remedies import Remedy
from chalicelib.domain.staff import Role
from chalicelib.settings import DEFAULT_POLICIES_FILE

UNITS = "(use hours, days, working days, business hours)"


def write(tmp_path: Path, text: str, name: str = "acme.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> str:
    with pytest.raises(PoliciesError) as caught:
        load_policies(path)
    return str(caught.value)


# --- the defaults -----------------------------------------------------------------------


def test_default_file_loads_to_exactly_the_model_defaults() -> None:
    assert load_policies(DEFAULT_POLICIES_FILE) == Policies()


def test_default_file_writes_out_every_setting() -> None:
    """So a company sees every setting it can change (only optional ones are commented)."""

    def keys(data: dict[str, Any], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for key, value in data.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= keys(value, f"{prefix}{key}.")
        return found

    written = tomllib.loads(DEFAULT_POLICIES_FILE.read_text(encoding="utf-8"))
    assert keys(written) == keys(Policies().model_dump(mode="json", exclude_none=True))


def test_default_file_names_every_remedy_and_approver() -> None:
    text = DEFAULT_POLICIES_FILE.read_text(encoding="utf-8")
    assert [remedy for remedy in Remedy if remedy.value not in text] == []
    for role in (Role.SUPERVISOR, Role.SERVICE_DIRECTOR, Role.SERVICE_VP):
        assert role.value in text


def test_defaults_are_the_documented_promises() -> None:
    shop = Policies().shop
    assert str(shop.refund_request_within) == "3 days"
    assert str(shop.reship_within) == "3 days"
    assert str(shop.tracking_check_within) == "5 days"
    assert str(shop.exchange_ship_within) == "3 working days"
    assert str(shop.credit_card_refund_arrival) == "20-30 working days"
    calendar = Policies().calendar
    assert (calendar.country, calendar.timezone) == ("CN", "Asia/Shanghai")
    assert (calendar.business_hours.start, calendar.business_hours.end) == (
        time(9, 0),
        time(17, 30),
    )


# --- a company's own file ---------------------------------------------------------------


def test_a_company_overrides_one_value_and_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nreship_within = "2 working days"\n')
    policies = load_policies(path)
    assert policies.shop.reship_within == Duration(amount=Decimal(2), unit=TimeUnit.WORKING_DAYS)
    defaults = Policies()
    assert policies.shop.tracking_check_within == defaults.shop.tracking_check_within
    assert policies.calendar == defaults.calendar
    assert policies.approvals == defaults.approvals
    assert policies.model_copy(update={"shop": defaults.shop}) == defaults


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_policies(write(tmp_path, "# nothing changed\n")) == Policies()


def test_approval_rules_merge_by_remedy_and_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[approvals]\n"
        "full_refund = { above = 1000 }\n"
        'reship = { above = 200.50, role = "service_director" }\n',
    )
    approvals = load_policies(path).approvals
    assert approvals[Remedy.FULL_REFUND].above == Decimal(1000)
    assert approvals[Remedy.FULL_REFUND].role is Role.SUPERVISOR  # kept
    assert approvals[Remedy.PARTIAL_REFUND] == Policies().approvals[Remedy.PARTIAL_REFUND]
    assert approvals[Remedy.RESHIP].above == Decimal("200.50")
    assert approvals[Remedy.RESHIP].role is Role.SERVICE_DIRECTOR


def test_a_new_approval_rule_needs_its_role(tmp_path: Path) -> None:
    path = write(tmp_path, "[approvals]\nreship = { above = 200 }\n")
    assert problems_of(path) == f"{path}: approvals.reship.role: missing"


def test_another_country(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[calendar]\ncountry = "DE"\nsubdivision = "BY"\ntimezone = "Europe/Berlin"\n'
        '[calendar.business_hours]\nstart = "8:00"\nend = "16:30"\n',
    )
    policies = load_policies(path)
    calendar = policies.calendar_for()
    assert isinstance(calendar, WorkingCalendar)
    assert (calendar.country, calendar.subdivision, calendar.timezone.key) == (
        "DE",
        "BY",
        "Europe/Berlin",
    )
    assert (calendar.day_start, calendar.day_end) == (time(8, 0), time(16, 30))
    assert policies.calendar_for() is calendar  # built once
    # Tuesday 23 December, "within 2 working days": Wednesday 24, then Monday 29, 16:30 CET.
    due = policies.deadline(
        datetime(2025, 12, 23, 9, 0, tzinfo=UTC), Duration.model_validate("2 working days")
    )
    assert due == datetime(2025, 12, 29, 15, 30, tzinfo=UTC)


def test_approver_for() -> None:
    policies = Policies()
    assert policies.approver_for(Remedy.FULL_REFUND, Decimal("500.01")) is Role.SUPERVISOR
    assert policies.approver_for(Remedy.FULL_REFUND, Decimal(500)) is None
    assert policies.approver_for(Remedy.FULL_REFUND, None) is None
    assert policies.approver_for(Remedy.COUPON, Decimal(10_000)) is None


# --- errors name the file and every bad key ---------------------------------------------


def test_typo_in_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nreship_witin = "3 days"\n')
    assert problems_of(path) == (
        f"{path}: shop.reship_witin: unknown setting "
        "(is it misspelt? default.toml lists every setting)"
    )


def test_typo_in_a_section_or_a_remedy(tmp_path: Path) -> None:
    message = problems_of(write(tmp_path, '[shopp]\nreship_within = "3 days"\n'))
    assert "shopp: unknown setting" in message
    message = problems_of(write(tmp_path, "[approvals]\nful_refund = { above = 1 }\n"))
    assert "approvals.ful_refund: unknown remedy (use refund_difference, " in message


def test_bad_unit(tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nreship_within = "3 weeks"\n')
    assert problems_of(path) == f"{path}: shop.reship_within: unknown unit 'weeks' {UNITS}"


def test_negative_amounts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[shop]\nreship_within = "-3 days"\n[approvals]\nfull_refund = { above = -5 }\n',
    )
    assert problems_of(path).splitlines() == [
        f"{path}: shop.reship_within: must not be negative (got -3 days)",
        f"{path}: approvals.full_refund.above: input should be greater than or equal to 0 (got -5)",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[calendar]\ncountry = "XX"\ntimezone = "Mars/Olympus"\n'
        '[calendar.business_hours]\nstart = "18:00"\n'
        '[shop]\ncredit_card_refund_arrival = "30-20 working days"\n'
        'exchange_ship_within = "1.5 working days"\n'
        'photos_requested_reply_within = "soon"\n'
        "tracking_check_within = 5\n",
    )
    lines = problems_of(path).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    keys = [line.removeprefix(f"{path}: ").split(":")[0] for line in lines]
    assert sorted(keys) == sorted(
        [
            "calendar.country",
            "calendar.timezone",
            "calendar.business_hours",
            "shop.credit_card_refund_arrival",
            "shop.exchange_ship_within",
            "shop.photos_requested_reply_within",
            "shop.tracking_check_within",
        ]
    )
    text = "\n".join(lines)
    assert "unknown country code 'XX'" in text
    assert "unknown time zone 'Mars/Olympus'" in text
    assert "start must be before end (got 18:00-17:30)" in text
    assert "working days must be a whole number (got 1.5 working days)" in text
    assert "expected an amount and a unit" in text


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nreship_within = "3 days"\nrefund_request_within = 3 days\n')
    message = problems_of(path)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 3" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    assert problems_of(path) == f"{path}: no such file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes("# 退款\n".encode("gbk"))
    assert problems_of(path).startswith(f"{path}: not UTF-8 text")


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "amount", "unit", "text"),
    [
        ("3 days", "3", TimeUnit.DAYS, "3 days"),
        ("1 day", "1", TimeUnit.DAYS, "1 day"),
        ("1 working days", "1", TimeUnit.WORKING_DAYS, "1 working day"),
        ("24 hours", "24", TimeUnit.HOURS, "24 hours"),
        ("1.5 hours", "1.5", TimeUnit.HOURS, "1.5 hours"),
        ("5 working days", "5", TimeUnit.WORKING_DAYS, "5 working days"),
        ("  5   Working   Days ", "5", TimeUnit.WORKING_DAYS, "5 working days"),
        ("5 business days", "5", TimeUnit.WORKING_DAYS, "5 working days"),
        ("2 business hours", "2", TimeUnit.BUSINESS_HOURS, "2 business hours"),
        ("0 days", "0", TimeUnit.DAYS, "0 days"),
        ({"amount": 3, "unit": "days"}, "3", TimeUnit.DAYS, "3 days"),
        ({"amount": 0.5, "unit": "business hours"}, "0.5", TimeUnit.BUSINESS_HOURS, None),
    ],
)
def test_duration_parsing(written: Any, amount: str, unit: TimeUnit, text: str | None) -> None:
    duration = Duration.model_validate(written)
    assert (duration.amount, duration.unit) == (Decimal(amount), unit)
    assert str(duration) == (text or f"{amount} {unit.value}")
    assert Duration.model_validate(str(duration)) == duration


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("3 weeks", f"unknown unit 'weeks' {UNITS}"),
        ("3", "a unit is needed"),
        ("three days", "expected an amount and a unit"),
        ("-1 hours", "must not be negative"),
        ("1.5 days", "days must be a whole number"),
        ("99999999 days", "must be at most 10000 days"),
        ("3-5 days", "expected one duration, not a range"),
        (3, "expected a text such as '3 days' or a table"),
        ({"amount": 3, "unit": "fortnights"}, "unknown unit 'fortnights'"),
    ],
)
def test_duration_errors(written: Any, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        Duration.model_validate(written)


def test_duration_table_needs_its_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        Duration.model_validate({"amount": 3})
    assert [error["loc"] for error in caught.value.errors()] == [("unit",)]


@pytest.mark.parametrize(
    "written",
    [
        "20-30 working days",
        "20–30 working days",
        "20 - 30 working days",
        "20 to 30 working days",
        {"min": 20, "max": 30, "unit": "working days"},
    ],
)
def test_duration_range(written: Any) -> None:
    span = DurationRange.model_validate(written)
    assert str(span) == "20-30 working days"
    assert span.shortest == Duration.model_validate("20 working days")
    assert span.longest == Duration.model_validate("30 working days")


def test_duration_range_errors() -> None:
    with pytest.raises(ValidationError, match="shortest is longer than the longest"):
        DurationRange.model_validate("30-20 working days")
    with pytest.raises(ValidationError, match="unknown unit 'weeks'"):
        DurationRange.model_validate("2-3 weeks")
    assert str(DurationRange.model_validate("25 working days")) == "25 working days"


def test_policies_are_frozen() -> None:
    policies = Policies()
    with pytest.raises(ValidationError):
        policies.shop.reship_within = Duration.model_validate("1 day")  # type: ignore[misc]


# --- the settings name the file ---------------------------------------------------------


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    settings.get_settings.cache_clear()
    settings.policies_from.cache_clear()
    yield
    settings.get_settings.cache_clear()
    settings.policies_from.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_settings_default_to_the_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVICE_DESK_POLICIES_FILE", raising=False)
    assert settings.get_settings().policies_file == DEFAULT_POLICIES_FILE
    assert settings.get_policies() == Policies()
    assert settings.get_policies() is settings.get_policies()


@pytest.mark.usefixtures("fresh_settings")
def test_settings_read_a_company_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[shop]\nreship_within = "1 day"\n')
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(path))
    assert str(settings.get_policies().shop.reship_within) == "1 day"


@pytest.mark.usefixtures("fresh_settings")
def test_a_relative_file_is_read_from_the_chalicelib_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", "policies/default.toml")
    assert settings.get_settings().policies_file == DEFAULT_POLICIES_FILE


@pytest.mark.usefixtures("fresh_settings")
def test_a_missing_policies_file_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", "policies/acme.toml")
    with pytest.raises(settings.SettingsError, match="SERVICE_DESK_POLICIES_FILE") as caught:
        settings.get_settings()
    assert "no such file" in str(caught.value)


@pytest.mark.usefixtures("fresh_settings")
def test_a_bad_company_file_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, '[shop]\nreship_within = "3 weeks"\n')
    monkeypatch.setenv("SERVICE_DESK_POLICIES_FILE", str(path))
    with pytest.raises(PoliciesError, match=r"shop\.reship_within: unknown unit 'weeks'"):
        settings.get_policies()


def test_an_approval_by_a_role_that_cannot_approve_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[approvals]\nfull_refund = { above = 100, role = "finance" }\n')

    with pytest.raises(PoliciesError, match="finance cannot approve resolutions"):
        load_policies(path)


def test_the_example_company_file_loads_with_its_dealers_and_forklift_promises() -> None:
    from decimal import Decimal
    from pathlib import Path

    from chalicelib.domain.policies import load_policies

    example = Path(__file__).parents[2] / "chalicelib" / "policies" / "example-forklifts.toml"
    policies = load_policies(example)
    field = policies.field_service
    assert field.dealer_for_region("jiangsu") == "east"
    assert field.dealer_for_region("Mars") is None
    assert field.promise_for("forklift").reply_within.amount == Decimal("0.5")
    assert field.promise_for("switchgear") == field.response["default"]
    assert "hydraulics" in field.suppliers


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ([{"up_to": 2000, "roles": ["qa_manager"]}, {"up_to": 500, "roles": ["service_vp"]},
          {"roles": ["service_vp"]}], "must increase"),
        ([{"up_to": 500, "roles": ["qa_manager"]}], "the last tier is for any amount"),
        ([{"roles": ["qa_manager"]}, {"roles": ["service_vp"]}], "only the last tier"),
        ([{"roles": []}], "at least 1"),
    ],
)
def test_parts_approval_tiers_must_make_sense(tiers: list[Any], problem: str) -> None:
    from pathlib import Path

    from chalicelib.domain.policies import PoliciesError, parse_policies

    with pytest.raises(PoliciesError) as refused:
        parse_policies({"field_service": {"parts_approvals": tiers}}, Path("acme.toml"))
    assert "field_service.parts_approvals" in str(refused.value)
    assert problem in str(refused.value)


def test_changed_tiers_change_who_approves() -> None:
    from decimal import Decimal
    from pathlib import Path

    from chalicelib.domain.policies import parse_policies
    from chalicelib.domain.staff import Role

    policies = parse_policies(
        {"field_service": {"parts_approvals": [
            {"up_to": 100, "roles": ["supervisor"]}, {"roles": ["service_director"]},
        ]}},
        Path("acme.toml"),
    )
    approvers = policies.field_service.approvers_for
    assert approvers(Decimal("100"), beyond_warranty=False) == (Role.SUPERVISOR,)
    assert approvers(Decimal("100.01"), beyond_warranty=False) == (Role.SERVICE_DIRECTOR,)
    # The other table keeps its default.
    assert Role.SALES_VP in approvers(Decimal("1000.01"), beyond_warranty=True)


def test_an_empty_public_base_url_from_the_stack_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.settings import Settings

    monkeypatch.setenv("SERVICE_DESK_PUBLIC_BASE_URL", "")
    assert Settings().public_base_url is None
    monkeypatch.setenv("SERVICE_DESK_PUBLIC_BASE_URL", "https://help.example.com")
    assert str(Settings().public_base_url) == "https://help.example.com/"
