"""The working-day calendar (工作日): when a deadline in days, working days or business
hours falls.

Public holidays come from the maintained ``holidays`` package, never from a hand-typed list.
For mainland China it knows both the statutory holidays and the make-up working weekends
(调休) the State Council announces each year, e.g. Sunday 2025-09-28 is a working day and
Friday 2025-10-03 is not. The 调休 of a year is only known once it is announced (usually in
November of the year before): keep ``holidays`` up to date; for a year the installed version
does not cover yet, only the statutory holidays and plain weekends are known.

Pure domain code: time comes in as arguments. Every method takes timezone-aware datetimes
(any zone; a naive one is an error) and returns **timezone-aware datetimes in UTC**. The
calendar's own zone is only used to decide which local day and which local hour a moment
falls on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

if TYPE_CHECKING:
    from chalicelib.domain.policies import Duration

# A working calendar never has more than a few weeks without a working day; this only stops a
# broken calendar (e.g. a country whose every day is a holiday) from looping for ever.
_MAX_DAYS_WITHOUT_WORK = 366


def check_country(country: str, subdivision: str | None = None) -> None:
    """Raise ValueError naming the country (or subdivision) if ``holidays`` does not know it."""
    try:
        calendar_class = type(holidays.country_holidays(country, years=()))
    except NotImplementedError:
        raise ValueError(
            f"unknown country code {country!r} for the holiday calendar "
            "(use an ISO 3166-1 alpha-2 code known to the 'holidays' package, "
            "e.g. 'CN', 'DE', 'US')"
        ) from None
    if subdivision is not None and subdivision not in calendar_class.subdivisions:
        known = ", ".join(calendar_class.subdivisions) or "none"
        raise ValueError(
            f"unknown subdivision {subdivision!r} of country {country!r} (known: {known})"
        )


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone of that name, or a ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Asia/Shanghai')"
        ) from None


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment


class WorkingCalendar:
    """Working days and business hours of one country (and optionally one subdivision).

    Holiday tables are built by year on first use and kept (one ``holidays`` object per
    year), so a long-lived calendar answers from memory.
    """

    def __init__(
        self,
        country: str = "CN",
        subdivision: str | None = None,
        timezone: str = "Asia/Shanghai",
        day_start: time = time(9, 0),
        day_end: time = time(17, 30),
    ) -> None:
        check_country(country, subdivision)
        if day_start.tzinfo is not None or day_end.tzinfo is not None:
            raise ValueError("business hours are local times, without a time zone")
        if not day_start < day_end:
            raise ValueError(
                f"business hours must start before they end (got {day_start:%H:%M}-{day_end:%H:%M})"
            )
        self.country = country
        self.subdivision = subdivision
        self.timezone = check_timezone(timezone)
        self.day_start = day_start
        self.day_end = day_end
        self._years: dict[int, holidays.HolidayBase] = {}

    def __repr__(self) -> str:
        where = self.country + (f"-{self.subdivision}" if self.subdivision else "")
        return (
            f"WorkingCalendar({where}, {self.timezone.key}, "
            f"{self.day_start:%H:%M}-{self.day_end:%H:%M})"
        )

    # --- days -------------------------------------------------------------------------

    def _holidays(self, year: int) -> holidays.HolidayBase:
        table = self._years.get(year)
        if table is None:
            table = holidays.country_holidays(
                self.country, subdiv=self.subdivision, years=year, expand=False
            )
            self._years[year] = table
        return table

    def is_working_day(self, day: date) -> bool:
        """Not a weekend and not a public holiday, or a make-up working day (调休)."""
        if isinstance(day, datetime):
            raise TypeError("is_working_day takes a date; use .date() of a local datetime")
        return self._holidays(day.year).is_working_day(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        candidate = day
        for _ in range(_MAX_DAYS_WITHOUT_WORK):
            candidate += timedelta(days=1)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within a year after {day} in {self!r}")

    def local(self, moment: datetime) -> datetime:
        """The moment on the calendar's wall clock."""
        return _aware(moment, "the time").astimezone(self.timezone)

    def opening(self, day: date) -> datetime:
        """Start of business on that local day, in UTC."""
        return datetime.combine(day, self.day_start, tzinfo=self.timezone).astimezone(UTC)

    def closing(self, day: date) -> datetime:
        """End of business on that local day, in UTC."""
        return datetime.combine(day, self.day_end, tzinfo=self.timezone).astimezone(UTC)

    # --- deadlines ----------------------------------------------------------------------

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline of "within ``days`` working days" (…个工作日内) from ``start``.

        The rule: the day of the start is not counted (as in civil-law period counting);
        the deadline is the **end of business on the N-th working day after the start's
        local date**. Weekends and holidays are skipped; make-up working weekends count.
        So a start on Friday, Saturday or Sunday with N=1 is due at the close of Monday
        (if Monday is a working day): a start on a holiday or weekend counts from the next
        working day, which is day 1.

        N=0 ("the same working day") is the end of business of the start's local date if it
        is a working day and the start is not after closing time; otherwise the end of
        business of the next working day (never a deadline before the start).

        Returns UTC.
        """
        if days < 0:
            raise ValueError(f"working days must not be negative, got {days}")
        local_start = self.local(start)
        today = local_start.date()
        if days == 0:
            if self.is_working_day(today) and start <= self.closing(today):
                return self.closing(today)
            return self.closing(self.next_working_day(today))
        day = today
        for _ in range(days):
            day = self.next_working_day(day)
        return self.closing(day)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` business hours after ``start``.

        Only time between the opening and the closing of working days counts (no lunch
        break is taken out). A start outside business hours (before opening, at or after
        closing, on a weekend or holiday) begins at the next opening; a count that ends
        exactly at a closing time ends there, not at the next opening. Elapsed time is real
        time, so a daylight-saving change inside business hours counts as the clock ran.

        Returns UTC.
        """
        if hours < 0:
            raise ValueError(f"business hours must not be negative, got {hours}")
        remaining = timedelta(hours=hours)
        cursor = _aware(start, "the start").astimezone(UTC)
        day = self.local(cursor).date()
        if self.is_working_day(day) and cursor < self.closing(day):
            cursor = max(cursor, self.opening(day))
        else:
            day = self.next_working_day(day)
            cursor = self.opening(day)
        while True:
            closes = self.closing(day)
            if cursor + remaining <= closes:
                return cursor + remaining
            remaining -= closes - cursor
            day = self.next_working_day(day)
            cursor = self.opening(day)

    def add_days(self, start: datetime, days: int) -> datetime:
        """Plain calendar days: the same local wall-clock time ``days`` days later,
        weekends and holidays included ("reship within 3 days"). Returns UTC."""
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        return (self.local(start) + timedelta(days=days)).astimezone(UTC)

    def add_hours(self, start: datetime, hours: float) -> datetime:
        """Plain elapsed hours, round the clock. Returns UTC."""
        if hours < 0:
            raise ValueError(f"hours must not be negative, got {hours}")
        return _aware(start, "the start").astimezone(UTC) + timedelta(hours=hours)

    def deadline(self, start: datetime, duration: Duration) -> datetime:
        """When something promised "within ``duration``" of ``start`` is due. Returns UTC."""
        amount = duration.amount
        match duration.unit:  # a TimeUnit; its members equal their text
            case "hours":
                return self.add_hours(start, float(amount))
            case "days":
                return self.add_days(start, int(amount))
            case "working days":
                return self.add_working_days(start, int(amount))
            case "business hours":
                return self.add_business_hours(start, float(amount))
        raise ValueError(f"unknown unit {duration.unit!r}")  # pragma: no cover
