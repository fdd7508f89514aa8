"""The working-day calendar: mainland-China holidays and 调休, other countries, deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import holidays
import pytest

from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.policies import Duration

CST = timezone(timedelta(hours=8), "CST")  # Asia/Shanghai has no daylight saving time


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


@pytest.fixture(scope="module")
def china() -> WorkingCalendar:
    return WorkingCalendar()


# --- working days -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, make-up working day (调休) for National Day
        (date(2025, 9, 30), True),
        (date(2025, 10, 1), False),  # National Day
        (date(2025, 10, 3), False),  # a Friday, but National Day week
        (date(2025, 10, 6), False),  # Mid-Autumn Festival
        (date(2025, 10, 8), False),  # day off, made up on 10-11
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, make-up working day
        (date(2025, 10, 12), False),  # Sunday
        (date(2026, 1, 2), False),  # day off, made up on Sunday 2026-01-04
        (date(2026, 1, 4), True),
    ],
)
def test_china_national_day_week_and_make_up_days(
    china: WorkingCalendar, day: date, working: bool
) -> None:
    assert china.is_working_day(day) is working


def test_holiday_tables_are_built_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real = holidays.country_holidays

    def counting(*args: Any, **kwargs: Any) -> holidays.HolidayBase:
        built.append(kwargs.get("years"))
        return real(*args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", counting)
    calendar = WorkingCalendar()
    built.clear()  # the constructor's check of the country code
    for day in range(1, 29):
        calendar.is_working_day(date(2025, 2, day))
        calendar.is_working_day(date(2026, 2, day))
    assert built == [2025, 2026]


# --- within N working days --------------------------------------------------------------


def test_friday_start_crosses_the_weekend(china: WorkingCalendar) -> None:
    friday = cst(2025, 3, 14, 10, 0)
    assert china.add_working_days(friday, 1) == cst(2025, 3, 17, 17, 30)  # Monday
    assert china.add_working_days(friday, 3) == cst(2025, 3, 19, 17, 30)  # Wednesday
    assert china.add_working_days(friday, 5) == cst(2025, 3, 21, 17, 30)  # next Friday


def test_weekend_start_counts_from_the_next_working_day(china: WorkingCalendar) -> None:
    for weekend_day in (15, 16):
        assert china.add_working_days(cst(2025, 3, weekend_day, 11, 0), 1) == cst(
            2025, 3, 17, 17, 30
        )
    # A Friday evening and the Saturday after it are due at the same time.
    assert china.add_working_days(cst(2025, 3, 14, 23, 0), 3) == china.add_working_days(
        cst(2025, 3, 15, 9, 0), 3
    )


def test_deadline_starting_on_a_holiday(china: WorkingCalendar) -> None:
    national_day = cst(2025, 10, 2, 10, 0)
    assert china.add_working_days(national_day, 0) == cst(2025, 10, 9, 17, 30)
    assert china.add_working_days(national_day, 1) == cst(2025, 10, 9, 17, 30)
    assert china.add_working_days(national_day, 2) == cst(2025, 10, 10, 17, 30)
    assert china.add_working_days(national_day, 3) == cst(2025, 10, 11, 17, 30)  # Saturday


def test_make_up_sunday_counts_as_a_working_day(china: WorkingCalendar) -> None:
    friday = cst(2025, 9, 26, 15, 0)
    assert china.add_working_days(friday, 1) == cst(2025, 9, 28, 17, 30)  # the Sunday
    assert china.add_working_days(friday, 3) == cst(2025, 9, 30, 17, 30)
    assert china.add_working_days(friday, 4) == cst(2025, 10, 9, 17, 30)  # after the holiday


def test_working_days_across_the_new_year(china: WorkingCalendar) -> None:
    assert china.add_working_days(cst(2025, 12, 31, 10, 0), 1) == cst(2026, 1, 4, 17, 30)


def test_zero_working_days_is_the_end_of_this_working_day(china: WorkingCalendar) -> None:
    assert china.add_working_days(cst(2025, 3, 14, 10, 0), 0) == cst(2025, 3, 14, 17, 30)
    assert china.add_working_days(cst(2025, 3, 14, 17, 30), 0) == cst(2025, 3, 14, 17, 30)
    # After closing time or on a weekend: the next working day, never a deadline in the past.
    assert china.add_working_days(cst(2025, 3, 14, 18, 0), 0) == cst(2025, 3, 17, 17, 30)
    assert china.add_working_days(cst(2025, 3, 15, 10, 0), 0) == cst(2025, 3, 17, 17, 30)


def test_the_local_date_decides_not_the_utc_date(china: WorkingCalendar) -> None:
    # Friday 23:30 UTC is already Saturday 07:30 in Shanghai.
    start = datetime(2025, 3, 14, 23, 30, tzinfo=UTC)
    assert china.add_working_days(start, 0) == cst(2025, 3, 17, 17, 30)


def test_results_are_in_utc(china: WorkingCalendar) -> None:
    due = china.add_working_days(cst(2025, 3, 14, 10, 0), 1)
    assert due.tzinfo is UTC
    assert due == datetime(2025, 3, 17, 9, 30, tzinfo=UTC)
    assert china.add_days(cst(2025, 3, 14, 10, 0), 1).tzinfo is UTC
    assert china.add_business_hours(cst(2025, 3, 14, 10, 0), 1).tzinfo is UTC


# --- business hours ---------------------------------------------------------------------


def test_business_hours_within_one_day(china: WorkingCalendar) -> None:
    assert china.add_business_hours(cst(2025, 3, 14, 10, 0), 2) == cst(2025, 3, 14, 12, 0)
    assert china.add_business_hours(cst(2025, 3, 14, 9, 0), 8.5) == cst(2025, 3, 14, 17, 30)
    assert china.add_business_hours(cst(2025, 3, 14, 10, 0), 0.25) == cst(2025, 3, 14, 10, 15)


def test_business_hours_carry_over_the_night_and_the_weekend(china: WorkingCalendar) -> None:
    # One hour on Friday, one on Monday morning (no lunch break is taken out).
    assert china.add_business_hours(cst(2025, 3, 14, 16, 30), 2) == cst(2025, 3, 17, 10, 0)
    # 20 hours from Monday's opening: 8.5 + 8.5 + 3.
    assert china.add_business_hours(cst(2025, 3, 17, 9, 0), 20) == cst(2025, 3, 19, 12, 0)


def test_business_hours_start_outside_hours_begin_at_the_next_opening(
    china: WorkingCalendar,
) -> None:
    assert china.add_business_hours(cst(2025, 3, 14, 7, 0), 1) == cst(2025, 3, 14, 10, 0)
    assert china.add_business_hours(cst(2025, 3, 14, 20, 0), 1) == cst(2025, 3, 17, 10, 0)
    assert china.add_business_hours(cst(2025, 3, 15, 12, 0), 1) == cst(2025, 3, 17, 10, 0)
    assert china.add_business_hours(cst(2025, 3, 14, 17, 30), 0) == cst(2025, 3, 17, 9, 0)
    assert china.add_business_hours(cst(2025, 3, 14, 12, 0), 0) == cst(2025, 3, 14, 12, 0)


def test_business_hours_across_a_holiday(china: WorkingCalendar) -> None:
    # Half an hour before the National Day week, the rest after it.
    assert china.add_business_hours(cst(2025, 9, 30, 17, 0), 2) == cst(2025, 10, 9, 10, 30)
    # Started during the holiday: counted from the first opening after it.
    assert china.add_business_hours(cst(2025, 10, 5, 10, 0), 9) == cst(2025, 10, 10, 9, 30)


# --- plain days and the dispatch on units -----------------------------------------------


def test_plain_days_include_weekends_and_holidays(china: WorkingCalendar) -> None:
    assert china.add_days(cst(2025, 9, 30, 10, 0), 3) == cst(2025, 10, 3, 10, 0)


@pytest.mark.parametrize(
    ("duration", "due"),
    [
        ("3 days", cst(2025, 10, 3, 16, 0)),
        ("24 hours", cst(2025, 10, 1, 16, 0)),
        ("1 working day", cst(2025, 10, 9, 17, 30)),
        ("5 working days", cst(2025, 10, 14, 17, 30)),  # 9, 10, 11 (Saturday), 13, 14
        ("2 business hours", cst(2025, 10, 9, 9, 30)),  # 1.5 h on the 30th, 0.5 h on the 9th
    ],
)
def test_deadline_dispatches_on_the_unit(
    china: WorkingCalendar, duration: str, due: datetime
) -> None:
    start = cst(2025, 9, 30, 16, 0)
    assert china.deadline(start, Duration.model_validate(duration)) == due


def test_bad_arguments(china: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        china.add_working_days(datetime(2025, 3, 14, 10, 0), 1)
    with pytest.raises(ValueError, match="negative"):
        china.add_working_days(cst(2025, 3, 14, 10, 0), -1)
    with pytest.raises(ValueError, match="negative"):
        china.add_business_hours(cst(2025, 3, 14, 10, 0), -0.5)
    with pytest.raises(TypeError):
        china.is_working_day(cst(2025, 3, 14, 10, 0))


# --- other countries and settings -------------------------------------------------------


def test_germany_christmas() -> None:
    germany = WorkingCalendar("DE", timezone="Europe/Berlin", day_end=time(17, 0))
    assert germany.is_working_day(date(2025, 12, 24))
    assert not germany.is_working_day(date(2025, 12, 25))
    assert not germany.is_working_day(date(2025, 12, 26))
    assert not germany.is_working_day(date(2025, 12, 27))
    start = datetime(2025, 12, 23, 10, 0, tzinfo=UTC)
    # Tue 23 → Wed 24 (1), Christmas and the weekend skipped, Mon 29 (2), 17:00 CET.
    assert germany.add_working_days(start, 2) == datetime(2025, 12, 29, 16, 0, tzinfo=UTC)
    assert germany.add_working_days(start, 2).tzinfo is UTC


def test_subdivision_holidays() -> None:
    bavaria = WorkingCalendar("DE", "BY", "Europe/Berlin")
    berlin = WorkingCalendar("DE", "BE", "Europe/Berlin")
    assert not bavaria.is_working_day(date(2025, 1, 6))  # Epiphany
    assert berlin.is_working_day(date(2025, 1, 6))


def test_united_states() -> None:
    us = WorkingCalendar("US", timezone="America/New_York")
    assert not us.is_working_day(date(2025, 7, 4))
    assert not us.is_working_day(date(2025, 11, 27))  # Thanksgiving
    assert us.is_working_day(date(2025, 11, 28))


def test_unknown_country_subdivision_or_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown country code 'XX'"):
        WorkingCalendar("XX")
    with pytest.raises(ValueError, match="unknown subdivision 'ZZ' of country 'DE'"):
        WorkingCalendar("DE", "ZZ", "Europe/Berlin")
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Shangai'"):
        WorkingCalendar(timezone="Asia/Shangai")
    with pytest.raises(ValueError, match="start before they end"):
        WorkingCalendar(day_start=time(18, 0), day_end=time(9, 0))
