"""The staff's spreadsheet: mirror the working views into it, and take their edits back.

Outbound (``sync``): every case change marks the case's rows dirty in the same transaction
(the sheet's outbox entry). A sync reads the views once (one read request for all tabs),
takes in any edit typed there that it has not seen yet, then writes every dirty row in one
batch request (split only to keep each under 2 MB). Rows are found by the hidden case id,
never by position; a case that leaves a view (closed, call made, part back) loses its row.

Inbound (``take_edits`` for the Apps Script's webhook, ``reconcile`` on a schedule because
webhooks get lost): an edited row is compared with what the system last wrote there (the
mirror) and with the case as it is now. A change is applied only through the staff desk's
``act_on_case`` (validation, permissions, version check); an edit based on an old version is
applied only if the columns it changes did not change meanwhile. Anything refused is put
back to the stored truth, with a ``sync note`` in the editor's language saying why.

The base of an edit is what the row's own version showed (the mirror keeps the editable
cells of each row's last ``RING`` versions), so a stale copy saved unchanged sends nothing
back. The mirror also keeps a hash of each row's read-only cells, so the reconcile puts
back read-only cells changed by hand.

Nothing is lost while the sheet is unreachable: the dirty marks stay until a write succeeds.
A write that fails without saying whether it was applied is never resent as it was (rows
are addressed by position): the views are read again and the write planned afresh. An
edit taken in is recorded as the row's base before the write, so a write that fails
without being applied never makes the same edit go in twice.

One writer at a time: rows are addressed by the positions a read found, so a sync, a
reconcile, a rebuild and the webhook each hold the sheet's lease (one store item, taken
with a conditional put before the read, released after the write; it expires by itself
when its holder dies). A schedule that finds the lease held does nothing (its marks stay);
the webhook waits a little, then answers as when the sheet cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from chalicelib.domain.case import Case, CaseEvent, Language
from chalicelib.domain.lifecycle import ActionRefused
from chalicelib.domain.policies import Policies
from chalicelib.domain.sheet_views import (
    CASE_ID,
    EDITED_BY,
    HIDDEN,
    ROW_KEY,
    VERSION,
    VIEWS,
    VIEWS_BY_NAME,
    EditPending,
    EditRefused,
    Row,
    SheetAction,
    View,
    next_change_at,
    note_text,
    rows_for,
    word,
)
from chalicelib.domain.staff import StaffMember
from chalicelib.services.ports import WriteConflict
from chalicelib.services.recipients import Recipients
from chalicelib.services.staff_desk import (
    CaseNotFound,
    DeskStore,
    StaleVersion,
    UnitLookup,
    act_on_case,
)
from chalicelib.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")


# -- what the sheet holds -------------------------------------------------------------------


@dataclass
class TabGrid:
    """A tab as read: its header row and its rows by 1-based row number (header is row 1).
    Cells are text, trailing empty cells may be missing."""

    title: str
    header: list[str]
    rows: dict[int, list[str]] = field(default_factory=dict)
    # Cells whose text may not be what was typed (a long number the spreadsheet kept as a
    # rounded float): 0-based column indexes by row number. Such a cell is never taken in.
    inexact: dict[int, set[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TabLayout:
    """How a tab is set up for people: header, frozen first row, dropdowns on editable
    columns, read-only columns protected, hidden columns, overdue rows highlighted."""

    title: str
    headers: list[str]
    editable: tuple[int, ...]  # column indexes (0-based) staff may edit
    choices: dict[int, tuple[str, ...]]  # dropdowns by column index
    strict_choices: frozenset[int]  # dropdowns that refuse other values
    hidden: tuple[int, ...]  # column indexes hidden from people
    highlight: int | None  # the "overdue" column: a row is highlighted when it is not empty
    clear: bool = False  # delete every row below the header first (a rebuild)
    # Free-text editable columns, formatted as text ("@"): a long number typed there (a
    # tracking number, a bank reference) stays the digits typed, never a rounded float.
    text_columns: tuple[int, ...] = ()


@dataclass
class TabWrite:
    """What one sync changes in one tab. Applied in this order: layout (or only the
    dropdowns of ``dropdowns``), updates (row numbers as read), deletes, appends.
    ``text_columns``: free-text columns (0-based) to keep formatted as text on new rows."""

    title: str
    layout: TabLayout | None = None
    dropdowns: TabLayout | None = None
    updates: dict[int, list[str]] = field(default_factory=dict)
    deletes: list[int] = field(default_factory=list)
    appends: list[list[str]] = field(default_factory=list)
    text_columns: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.layout or self.dropdowns or self.updates or self.deletes
                    or self.appends)


class SheetUnavailable(Exception):
    """The sheet could not be reached (after retries): nothing was changed, try later."""


class SheetWriteUncertain(SheetUnavailable):
    """A write failed in a way that does not say whether it was applied (a 5xx answer, a
    dropped connection after sending). Rows are addressed by position, so it is never sent
    again as it was: the sheet is read again and the write planned afresh."""


class SheetBackend(Protocol):
    """A spreadsheet: Google Sheets (gspread) or a local xlsx workbook (openpyxl)."""

    requests: int  # requests made so far (reads and writes), for the figures

    def read(self, titles: Sequence[str]) -> dict[str, TabGrid | None]:
        """Every row of these tabs, in one request; None for a tab that does not exist."""

    def read_rows(self, title: str, rows: Sequence[int]) -> TabGrid:
        """The header and these rows of one tab, in one request."""

    def write(self, writes: Sequence[TabWrite]) -> None:
        """Apply the writes in as few requests as the service allows (one batch)."""

    def pause(self, seconds: float) -> None:
        """Wait, as the backend's own retries wait (tests make it record the waits)."""


# -- what the store keeps of the sheet ----------------------------------------------------------


RING = 6  # how many recent versions of a row the mirror remembers (the base of an edit)
# The most a cell of a row's record may keep (typed input held, cells remembered): a
# DynamoDB item is at most 400 KB, and the record keeps each row's last RING versions.
# Typed input held longer is refused with a note; a longer cell remembered (a long note
# taken in) is kept as its beginning and a hash (``kept``), enough to tell it again.
CELL_CAP = 2000


def kept(value: str) -> str:
    """A cell as the row's record keeps it: itself, or (over ``CELL_CAP``) its beginning
    and a hash of the whole, so it can still be told apart from any other text."""
    if len(value) <= CELL_CAP:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:24]
    return f"{value[:CELL_CAP - 32]}…#{digest}"


def _kept_cells(cells: Mapping[str, str]) -> dict[str, str]:
    return {key: kept(value) for key, value in cells.items()}


@dataclass(frozen=True)
class MirrorEntry:
    """What the system last wrote in one row: the editable cells (the base an edit is
    compared with), the case version, the note shown, typed input kept while it waits.
    ``seen``: the editable cells as shown at each of the last few versions written (a ring
    of ``RING``), so an edit on an older copy of the row is compared with what that copy
    showed. ``digest``: a hash of the row's read-only and hidden cells as written, so a
    read-only cell changed by hand is noticed and put back."""

    cells: dict[str, str]
    version: int
    note: str = ""
    held: dict[str, str] = field(default_factory=dict)
    seen: dict[int, dict[str, str]] = field(default_factory=dict)
    digest: str = ""

    @property
    def shown(self) -> dict[str, str]:
        """The editable cells as the row shows them: as written, or as typed and kept."""
        return {**self.cells, **self.held}

    def shown_at(self, version: int | None) -> dict[str, str] | None:
        """The editable cells as a row at ``version`` showed them; None if not remembered."""
        if version is None:
            return None
        if version == self.version:
            return self.shown
        return self.seen.get(version)

    def as_dict(self) -> dict[str, Any]:
        return {"cells": self.cells, "version": self.version, "note": self.note,
                "held": self.held, "seen": {str(v): c for v, c in self.seen.items()},
                "digest": self.digest}

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> MirrorEntry:
        seen = values.get("seen") or {}
        return cls(cells=dict(values.get("cells") or {}), version=int(values["version"]),
                   note=str(values.get("note") or ""), held=dict(values.get("held") or {}),
                   seen={int(v): dict(c) for v, c in seen.items()},
                   digest=str(values.get("digest") or ""))


def row_digest(view: View, cells: Mapping[str, str]) -> str:
    """A hash of a row's read-only cells, its note and its hidden id / row / version cells
    (not the editable cells, not "edited by": people and the Apps Script write those)."""
    editable = {column.key for column in view.editable}
    values = [cells.get(key, "").strip() for key in view.keys
              if key not in editable and key != EDITED_BY]
    text = json.dumps(values, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Mirror:
    """The rows of one case as last written, by row id ("<view>|<case id>/<key>").
    ``marker``: the dirty mark as read (None: not dirty); ``rev`` guards concurrent writers."""

    case_id: str
    entries: dict[str, MirrorEntry]
    rev: int = 0
    marker: str | None = None


class SheetStore(DeskStore, Protocol):
    def dirty_sheet_mirrors(self, now: datetime, limit: int) -> list[Mirror]:
        """Cases whose rows must be written, oldest mark first (a sparse index query)."""

    def sheet_mirrors(self, case_ids: Iterable[str]) -> dict[str, Mirror]: ...

    def mirrored_case_ids(self) -> list[str]:
        """Every case with a row in the sheet, as the store last wrote it."""

    def sheet_candidates(self) -> list[str]:
        """Every case that may have a row in a view (open, or with a promise running)."""

    def get_cases(self, case_ids: Iterable[str]) -> dict[str, Case]: ...

    def save_sheet_mirror(self, mirror: Mirror, entries: dict[str, MirrorEntry],
                          settled: bool, next_at: datetime | None) -> bool:
        """Store the rows written, only if nobody else wrote the mirror since it was read
        (False otherwise; False too, logged, when the store refuses the record, too large
        say: the case stays marked). ``settled``: the rows are written as of the mark
        read, so the mark is cleared (or moved to ``next_at``, when a row will turn
        overdue) unless the case was marked again meanwhile."""

    def mark_sheet_dirty(self, case_ids: Iterable[str], now: datetime) -> None: ...

    def sheet_state(self) -> dict[str, str]:
        """What the store knows of the sheet as a whole (the staff list its dropdowns
        offer, as a hash)."""

    def save_sheet_state(self, values: Mapping[str, str]) -> None: ...

    def take_sheet_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        """Hold the sheet until ``until``: only if nobody holds it, its holder's lease ran
        out before ``now``, or ``holder`` already holds it (a renewal). False otherwise."""

    def release_sheet_lease(self, holder: str) -> None:
        """Give the sheet up, if ``holder`` still holds it (else nothing happens)."""


# -- reading rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    """A row of a view as found in the sheet."""

    view: View
    number: int
    cells: dict[str, str]  # by column key, visible and hidden ("case id", "row", …)
    inexact: frozenset[str] = frozenset()  # columns whose text may not be what was typed

    @property
    def case_id(self) -> str:
        return self.cells.get(CASE_ID, "")

    @property
    def row_id(self) -> str:
        return f"{self.view.name}|{self.case_id}/{self.cells.get(ROW_KEY, '')}"

    @property
    def version(self) -> int | None:
        text = self.cells.get(VERSION, "")
        return int(text) if text.isdigit() else None


@dataclass
class ParsedTab:
    view: View
    grid: TabGrid | None
    columns: dict[str, int]  # column key → index
    rows: list[SheetRow]
    _index: dict[str, list[SheetRow]] | None = field(default=None, repr=False)
    _cases: dict[str, dict[str, list[SheetRow]]] | None = field(default=None, repr=False)

    @property
    def laid_out(self) -> bool:
        """The tab exists and every column is where a header names it."""
        return self.grid is not None and set(self.view.keys) <= self.columns.keys()

    def by_row_id(self) -> dict[str, list[SheetRow]]:
        """The rows by row id (a copied row shows up twice), worked out once."""
        if self._index is None:
            self._index = {}
            for row in self.rows:
                if row.case_id:
                    self._index.setdefault(row.row_id, []).append(row)
        return self._index

    def of_case(self, case_id: str) -> dict[str, list[SheetRow]]:
        """This case's rows by row id."""
        if self._cases is None:
            self._cases = {}
            for row_id, rows in self.by_row_id().items():
                self._cases.setdefault(rows[0].case_id, {})[row_id] = rows
        return self._cases.get(case_id, {})


def parse_tab(view: View, grid: TabGrid | None) -> ParsedTab:
    if grid is None:
        return ParsedTab(view, None, {}, [])
    columns: dict[str, int] = {}
    for index, text in enumerate(grid.header):
        key = view.key_of_header(text)
        if key is not None and key not in columns:
            columns[key] = index
    rows = []
    for number, values in sorted(grid.rows.items()):
        cells = {key: (values[index].strip() if index < len(values) else "")
                 for key, index in columns.items()}
        odd = grid.inexact.get(number, set())
        inexact = frozenset(key for key, index in columns.items() if index in odd)
        if any(values):
            rows.append(SheetRow(view, number, cells, inexact))
    return ParsedTab(view, grid, columns, rows)


def layout_of(view: View, language: Language, staff_ids: Sequence[str], *,
              clear: bool = False) -> TabLayout:
    headers = view.headers(language)
    keys = [column.key for column in view.columns]
    choices: dict[int, tuple[str, ...]] = {}
    strict = set()
    for index, column in enumerate(view.columns):
        if column.choices:
            choices[index] = column.choices
            strict.add(index)
        elif column.staff_choices and staff_ids:
            # Not strict: a new colleague can be typed before the next layout.
            choices[index] = tuple(staff_ids)
    hidden_from = len(view.columns) + 1
    return TabLayout(
        title=view.name,
        headers=headers,
        editable=tuple(i for i, column in enumerate(view.columns) if column.editable),
        choices=choices,
        strict_choices=frozenset(strict),
        hidden=tuple(range(hidden_from, len(headers))),
        highlight=keys.index("overdue") if "overdue" in keys else None,
        clear=clear,
        text_columns=text_columns(view),
    )


def text_columns(view: View, columns: Mapping[str, int] | None = None) -> tuple[int, ...]:
    """The free-text editable columns (no fixed list of values): kept formatted as text.
    ``columns``: where the tab's header has each column (default: the declared order)."""
    where = columns or {column.key: i for i, column in enumerate(view.columns)}
    return tuple(sorted(where[column.key] for column in view.editable
                        if not column.choices and column.key in where))


# -- the work ------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    dirty: int = 0
    rows_written: int = 0
    rows_removed: int = 0
    rows_added: int = 0
    edits_applied: int = 0
    edits_refused: int = 0
    edits_pending: int = 0
    requests: int = 0
    unavailable: bool = False
    busy: bool = False  # another run held the sheet: nothing was read or written
    replans: int = 0  # writes that failed without saying whether they were applied
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dirty": self.dirty, "rows_written": self.rows_written,
            "rows_added": self.rows_added, "rows_removed": self.rows_removed,
            "edits_applied": self.edits_applied, "edits_refused": self.edits_refused,
            "edits_pending": self.edits_pending, "requests": self.requests,
            "unavailable": self.unavailable, "busy": self.busy, "replans": self.replans,
        }


@dataclass
class SheetDesk:
    """What a sync or an edit needs: the store, the sheet, the rules, who works here."""

    store: SheetStore
    backend: SheetBackend
    policies: Policies
    settings: Settings
    now: datetime
    base_url: str
    units: UnitLookup | None = None
    _people: Recipients | None = None
    _rows: dict[tuple[str, int], dict[str, Row]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.policies.calendar.timezone)

    @property
    def language(self) -> Language:
        return self.settings.default_language

    @property
    def staff(self) -> list[StaffMember]:
        """The active staff, read once."""
        if self._people is None:
            self._people = Recipients(self.store, self.settings)
        return self._people.members

    def rows_of(self, case: Case) -> dict[str, Row]:
        """The case's rows in every view (worked out once per case version)."""
        key = (case.case_id, case.version)
        if key not in self._rows:
            self._rows[key] = rows_for(case, self.now, self.zone, self.language)
        return self._rows[key]

    def editor(self, email: str) -> StaffMember | None:
        email = email.strip().lower()
        if not email:
            default = self.settings.sheets_default_editor
            return next((m for m in self.staff if m.staff_id == default), None)
        return next((m for m in self.staff if (m.email or "").lower() == email), None)

    def layout(self, view: View, *, clear: bool = False) -> TabLayout:
        return layout_of(view, self.language, [m.staff_id for m in self.staff], clear=clear)

    def read_all(self) -> dict[str, ParsedTab]:
        grids = self.backend.read([view.name for view in VIEWS])
        return {view.name: parse_tab(view, grids.get(view.name)) for view in VIEWS}


@dataclass
class RowOutcome:
    status: str  # "unchanged", "applied", "refused", "pending"
    note: str = ""
    case: Case | None = None  # the case after the edit (applied)
    held: dict[str, str] = field(default_factory=dict)
    # Set when the edit changed the case: the editable cells as the row showed them, and
    # the version the row showed (the row reads as unchanged from then on).
    typed: dict[str, str] = field(default_factory=dict)
    row_version: int | None = None


def _when_text(desk: SheetDesk) -> str:
    return f"{desk.now.astimezone(desk.zone):%m-%d %H:%M}"


# Note texts the sync adds to those of the views (chalicelib/domain/sheet_views.NOTES):
# a category sentence in the staff's language, then the detail.
_NOTES: dict[Language, dict[str, str]] = {
    Language.EN: {
        "no_editor": "who made this edit is not known: the sheet did not say who edited. "
                     "In Google Sheets, edit with your company Google account; in the local "
                     "workbook, set SERVICE_DESK_SHEETS_DEFAULT_EDITOR to your staff id "
                     "(make run does this for you)",
        "role": "your role may not do this",
        "not_now": "not possible while the case is {status}",
        "bad_value": "bad value for {columns}",
        "changed_by": "{columns} changed meanwhile by {who} (now version {version}, your copy "
                      "showed version {yours}: {now}); your edit was not applied",
        "stale_row": "this row showed version {yours}, too old to tell what you changed; "
                     "it now shows the case as it is (version {version}): type your edit "
                     "again",
        "inexact": "{columns}: the number lost digits (the cell was not formatted as text); "
                   "type it again in this column, which is now text",
        "too_long": "{columns}: longer than {limit} characters, too long to keep until the "
                    "rest of the row is filled in; type a shorter text",
        "held_dropped": "this call was recorded meanwhile (not from this row), so what was "
                        "typed here waiting for the outcome was not saved: “{typed}”; add it "
                        "as a note on the case if still needed",
    },
    Language.ZH: {
        "no_editor": "无法确认修改人：表格没有记录是谁修改的。在 Google 表格中请用公司的 Google "
                     "账号修改；在本地工作簿中请把 SERVICE_DESK_SHEETS_DEFAULT_EDITOR 设为您的"
                     "员工编号（make run 会自动设置）",
        "role": "您的角色不能执行此操作",
        "not_now": "案件当前状态（{status}）不允许此操作",
        "bad_value": "“{columns}”的值无效",
        "changed_by": "{columns} 已被 {who} 修改（现为第 {version} 版，您看到的是第 {yours} "
                      "版：{now}），您的修改未保存",
        "stale_row": "此行显示的是第 {yours} 版，太旧，无法判断您改了什么；现已显示案件当前"
                     "内容（第 {version} 版），请重新输入",
        "inexact": "{columns}：数字丢失了位数（单元格不是文本格式）；此列现为文本格式，"
                   "请重新输入",
        "too_long": "{columns}：超过 {limit} 个字符，太长，无法保留到整行填完；请输入较短的"
                    "内容",
        "held_dropped": "此次回访已在别处记录（不是在此行），此行等待结果时输入的内容未保存："
                        "“{typed}”；如仍需要，请作为案件备注添加",
    },
}


def _note(language: Language, key: str, **values: str) -> str:
    text = _NOTES[language].get(key)
    return text.format(**values) if text is not None else note_text(language, key, **values)


def _not_saved(desk: SheetDesk, language: Language, reason: str,
               case: Case | None = None) -> RowOutcome:
    """Refused: the note says when and why; ``case``: what an earlier step did change."""
    note = note_text(language, "not_saved", at=_when_text(desk), reason=reason)
    return RowOutcome("refused", note, case=case)


def _refusal(desk: SheetDesk, language: Language, key: str, **values: str) -> RowOutcome:
    return _not_saved(desk, language, _note(language, key, **values))


def _columns_of(view: View, fields: Iterable[str], language: Language) -> str:
    """The headers of the columns an action's parameters came from (``params.owner`` →
    owner), or the parameter names where no column matches."""
    names = []
    for name in fields:
        key = name.removeprefix("params.")
        column = next((c for c in view.editable if c.key == key), None)
        if column is None and key == "text":
            column = next((c for c in view.editable if c.key == "add_note"), None)
        if column is None and key in ("note", "question"):
            column = next((c for c in view.editable if c.key == "comment"), None)
        names.append(column.header(language) if column else key)
    return ", ".join(dict.fromkeys(names))


def _reason(error: ActionRefused, language: Language, view: View, case: Case) -> str:
    """Why an action was refused: a sentence in the staff's language (role / status / a
    value), then the desk's own words (English) as the detail."""
    fields = [str(e.get("field", "")) for e in error.errors if e.get("field")]
    if error.code == "role":
        category = _note(language, "role")
    elif error.errors:
        category = _note(language, "bad_value",
                         columns=_columns_of(view, fields, language) or "—")
    else:
        category = _note(language, "not_now", status=word(language, case.status.value))
    detail = "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in error.errors)
    detail = f"{error.reason} ({detail})" if detail else error.reason
    separator = "：" if language is Language.ZH else ": "
    return f"{category}{separator}{detail}"


def _who(events: Sequence[CaseEvent]) -> str:
    """Who made the changes since a version (staff ids, or "system"), for a note."""
    actors = [event.actor.removeprefix("staff:") for event in events]
    return ", ".join(dict.fromkeys(actors)) or "—"


def take_row_edit(desk: SheetDesk, row: SheetRow, entry: MirrorEntry | None,
                  case: Case | None, editor_email: str) -> RowOutcome:
    """One row as staff left it: apply what they changed, refuse what cannot be, or leave it
    (nothing changed, or waiting for another column).

    What the person changed is the row against what the row's own version showed (the
    mirror remembers the last few versions written); what changed meanwhile is that
    against the case now. The edit goes in only where the two do not overlap."""
    view = row.view
    language = desk.language
    if case is None or entry is None:
        # No case, or a row the store has no record of writing (its record was lost, or it
        # was copied): nothing in it can be told apart from an edit; it is written afresh.
        return RowOutcome("unchanged")
    current = desk.rows_of(case).get(row.row_id)
    now_cells = {column.key: current.cells.get(column.key, "") if current else ""
                 for column in view.editable}
    typed = {column.key: row.cells.get(column.key, "") for column in view.editable}
    base = entry.shown_at(row.version)
    if base is None:
        # A version the mirror no longer remembers (or a version cell changed by hand):
        # what the person changed cannot be told. Rewritten as it is now; a row that
        # differs from both the case and the last write gets a note.
        if typed == now_cells or _kept_cells(typed) == {
                k: entry.shown.get(k, "") for k in typed}:
            return RowOutcome("unchanged")
        person = {k: v for k, v in typed.items() if v != now_cells[k]}
    else:
        # The record keeps a long cell as its beginning and a hash (``kept``).
        person = {k: v for k, v in typed.items() if kept(v) != base.get(k, "")}
    if not person:
        return RowOutcome("unchanged")
    meanwhile = set() if base is None else {
        k for k in person if base.get(k, "") != kept(now_cells[k])}
    # Typed what the case already says: nothing to do for that column.
    conflict = sorted(k for k in meanwhile if person[k] != now_cells[k])
    edited = {k: v for k, v in person.items() if k not in meanwhile}
    if base is not None and not conflict and not edited:
        return RowOutcome("unchanged")
    editor = desk.editor(editor_email)
    if editor is not None:
        language = Language(editor.language) if editor.language else language
    if current is None:
        return _refusal(desk, language, "left_view")
    if editor is None:
        if editor_email.strip():
            return _refusal(desk, language, "unknown_editor", editor=editor_email.strip())
        return _refusal(desk, language, "no_editor")
    if base is None:
        return _refusal(desk, language, "stale_row", yours=row.cells.get(VERSION, "") or "?",
                        version=str(case.version))
    lost = [k for k in person if k in row.inexact]
    if lost:
        return _refusal(desk, language, "inexact",
                        columns=", ".join(view.column(k).header(language) for k in lost))
    if conflict:
        # Based on an older version, and what it changes changed since: put back.
        assert row.version is not None
        since = desk.store.events_since(case.case_id, row.version)
        return _refusal(
            desk, language, "changed_by",
            columns=", ".join(view.column(k).header(language) for k in conflict),
            who=_who(since), version=str(case.version), yours=str(row.version),
            now=", ".join(now_cells[k] or "—" for k in conflict))
    for key, value in edited.items():
        column = view.column(key)
        if value and column.choices and value not in column.choices:
            return _refusal(desk, language, "not_a_choice", value=value,
                            choices=", ".join(column.choices))
    assert view.edits is not None  # a view with an editable column says what edits do
    try:
        actions = view.edits(case, current.key, edited, row.cells)
    except EditPending:
        held = {column.key: row.cells[column.key] for column in view.editable
                if column.typed_input and row.cells.get(column.key)}
        too_long = [k for k, v in held.items() if len(v) > CELL_CAP]
        if too_long:  # kept in the row's record until the outcome comes: capped
            return _refusal(desk, language, "too_long", limit=f"{CELL_CAP:,}",
                            columns=", ".join(view.column(k).header(language)
                                              for k in too_long))
        return RowOutcome("pending", note_text(language, "waiting"), held=held)
    except EditRefused as refused:
        return _refusal(desk, language, refused.note, **refused.values)
    return _apply(desk, view, case, actions, editor, language)


def _apply(desk: SheetDesk, view: View, case: Case, actions: list[SheetAction],
           editor: StaffMember, language: Language) -> RowOutcome:
    done: Case | None = None
    for step in actions:
        try:
            done = act_on_case(
                desk.store, desk.policies, case_id=case.case_id, action=step.action,
                params=step.params, expected_version=(done or case).version, actor=editor,
                now=desk.now, base_url=desk.base_url, settings=desk.settings, units=desk.units,
            )
        except ActionRefused as refused:
            return _not_saved(desk, language, _reason(refused, language, view, done or case),
                              done)
        except StaleVersion as stale:
            conflict = _note(language, "changed_by", columns="—",
                             who=_who(stale.changes),
                             version=str(stale.current.version),
                             yours=str((done or case).version), now="—")
            return _not_saved(desk, language, conflict, done)
        except (CaseNotFound, WriteConflict):
            return RowOutcome("refused", "", case=done)
    return RowOutcome("applied", case=done)


# -- writing rows --------------------------------------------------------------------------------


@dataclass
class _Plan:
    """Rows to write, by tab, while a sync or an edit is worked out."""

    tabs: dict[str, ParsedTab]
    writes: dict[str, TabWrite] = field(default_factory=dict)

    def tab_write(self, view: View) -> TabWrite:
        return self.writes.setdefault(view.name, TabWrite(view.name))

    def values(self, view: View, row: Row, entry: MirrorEntry | None) -> list[str]:
        """The row's values laid out as the tab's header has them, with its note and any
        typed input kept (``entry``)."""
        tab = self.tabs[view.name]
        values = [""] * (max(tab.columns.values(), default=-1) + 1)
        cells = view.row_cells(row, entry.note if entry else "", entry.held if entry else None)
        for key, value in cells.items():
            values[tab.columns[key]] = value
        return values

    def put_case(self, case_id: str, rows: _CaseRows, report: SyncReport,
                 views: Sequence[View] = VIEWS) -> None:
        """Make the sheet show exactly the case's desired rows (found by row id)."""
        for view in views:
            tab = self.tabs[view.name]
            mine = {rid: list(found) for rid, found in tab.of_case(case_id).items()}
            write = self.tab_write(view)
            for row_id, row in rows.desired.items():
                if row.view != view.name:
                    continue
                values = self.values(view, row, rows.entries.get(row_id))
                there = mine.pop(row_id, [])
                if not there:
                    write.appends.append(values)
                    write.text_columns = text_columns(view, tab.columns)
                    report.rows_added += 1
                    continue
                first, *extra = there
                assert tab.grid is not None
                if _padded(tab.grid.rows.get(first.number, []), len(values)) != values:
                    write.updates[first.number] = values
                    report.rows_written += 1
                write.deletes += [r.number for r in extra]
                report.rows_removed += len(extra)
            for found in mine.values():
                write.deletes += [r.number for r in found]
                report.rows_removed += len(found)

    def writes_to_send(self) -> list[TabWrite]:
        return [write for write in self.writes.values() if not write.empty]


def _padded(values: list[str], width: int) -> list[str]:
    return (values + [""] * width)[:width]


@dataclass(frozen=True)
class _CaseRows:
    """A case's rows as they should read (``desired``), and the mirror once written."""

    desired: dict[str, Row]
    entries: dict[str, MirrorEntry]


def _case_rows(desk: SheetDesk, case: Case | None, old: Mapping[str, MirrorEntry],
               outcomes: Mapping[str, RowOutcome]) -> _CaseRows:
    """The rows of a case (none if it is gone) and its mirror after writing them: a note
    stays while the case is at the version it was written for; typed input waiting for
    another column (a comment typed before the call's outcome) stays as long as the row
    still waits for it, whatever else changes the case, and its note with it (once the
    call is recorded some other way it is dropped, the note quoting it); a refusal or a wait just
    found sets them. Each entry keeps what the row showed at its last few versions (the
    base of a later stale edit)."""
    desired = desk.rows_of(case) if case is not None else {}
    entries = {}
    for row_id, row in desired.items():
        view = VIEWS_BY_NAME[row.view]
        cells = _kept_cells(
            {column.key: row.cells.get(column.key, "") for column in view.editable})
        previous = old.get(row_id)
        outcome = outcomes.get(row_id)
        note, held = "", {}
        if outcome is not None and outcome.status in ("refused", "pending"):
            note, held = outcome.note, outcome.held
        elif outcome is not None and outcome.status == "applied":
            pass  # what was typed went in: nothing waits any more
        elif previous is not None and previous.version == row.version:
            note, held = previous.note, previous.held
        elif previous is not None and previous.held:
            if case is not None and _still_waits(view, case, row, previous.held):
                # The same row (the same pending call): what was typed still waits for
                # the rest of the row, though the case changed meanwhile.
                note, held = previous.note, previous.held
            else:
                # The row can no longer take it (the call was recorded meanwhile, through
                # the API): what was typed is dropped, and the note quotes it.
                note = _not_saved(desk, desk.language, _note(
                    desk.language, "held_dropped",
                    typed=" / ".join(v for v in previous.held.values() if v))).note
        seen = dict(previous.seen) if previous is not None else {}
        if previous is not None:
            seen[previous.version] = previous.shown
        seen[row.version] = {**cells, **held}
        seen = {version: seen[version] for version in sorted(seen)[-RING:]}
        digest = row_digest(view, view.row_cells(row, note, held))
        entries[row_id] = MirrorEntry(cells=cells, version=row.version, note=note, held=held,
                                      seen=seen, digest=digest)
    return _CaseRows(desired, entries)


def _still_waits(view: View, case: Case, row: Row, held: Mapping[str, str]) -> bool:
    """Whether the row, with this typed input held, still waits for the rest of it (the
    outcome of the call to make now); not once that call was recorded some other way."""
    if view.edits is None:
        return False
    try:
        view.edits(case, row.key, dict(held), {**row.cells, **held})
    except EditPending:
        return True
    except EditRefused:
        return False
    return False


def _reach(desk: SheetDesk, report: SyncReport, what: str, call: Callable[[], T]) -> T | None:
    """One call to the sheet, counted; None when it cannot be reached (logged, marked on
    the report): nothing is lost, the rows stay dirty and the reconcile takes edits in."""
    before = desk.backend.requests
    try:
        return call()
    except SheetUnavailable as error:
        logger.warning("sheet unavailable (%s): %s", what, error)
        report.unavailable = True
        return None
    finally:
        report.requests += desk.backend.requests - before


SENT, UNAVAILABLE, UNCERTAIN = "sent", "unavailable", "uncertain"


def _send(desk: SheetDesk, plan: _Plan, report: SyncReport) -> str:
    """Write the plan: SENT, UNAVAILABLE (certainly not applied: nothing changed), or
    UNCERTAIN (it may have been applied: read the sheet again before writing anything)."""
    writes = plan.writes_to_send()
    if not writes:
        return SENT
    before = desk.backend.requests
    try:
        desk.backend.write(writes)
        return SENT
    except SheetWriteUncertain as error:
        logger.warning("sheet write may or may not have been applied: %s", error)
        return UNCERTAIN
    except SheetUnavailable as error:
        logger.warning("sheet unavailable (writing rows): %s", error)
        report.unavailable = True
        return UNAVAILABLE
    finally:
        report.requests += desk.backend.requests - before


def _to_lay_out(tab: ParsedTab) -> bool:
    """A tab that is there but whose header lost a column: it is laid out again, empty."""
    return tab.grid is not None and not tab.laid_out


def _readable(tabs: Mapping[str, ParsedTab]) -> dict[str, ParsedTab]:
    """The tabs whose edits can be read: a tab to lay out again only if its header still
    names every editable column and the hidden ones (else an edit cannot be told from a
    lost column, and its rows are left out: they are written again from the store)."""
    readable = dict(tabs)
    for name, tab in tabs.items():
        needed = {column.key for column in tab.view.editable} | set(HIDDEN)
        if _to_lay_out(tab) and not needed <= tab.columns.keys():
            readable[name] = ParsedTab(tab.view, tab.grid, tab.columns, [])
    return readable


def _join_tabs_to_lay_out(desk: SheetDesk, tabs: Mapping[str, ParsedTab],
                          dirty: dict[str, Mirror]) -> None:
    """Every case with a row in a tab about to be laid out again joins this sync, so that
    what was typed in its rows is taken in before the tab is emptied."""
    shown = {row.case_id for tab in tabs.values() if _to_lay_out(tab)
             for row in tab.rows if row.case_id and row.case_id not in dirty}
    if shown:
        found = desk.store.sheet_mirrors(sorted(shown))
        dirty.update({case_id: mirror for case_id, mirror in found.items()})


def _layouts(desk: SheetDesk, plan: _Plan) -> bool:
    """Set up any tab that is missing, or whose header lost a column (its rows cannot be
    trusted: it is emptied and every row written again). True if a tab was laid out."""
    laid_out = False
    for view in VIEWS:
        tab = plan.tabs[view.name]
        if tab.laid_out:
            continue
        layout = desk.layout(view, clear=tab.grid is not None)
        plan.tab_write(view).layout = layout
        plan.tabs[view.name] = parse_tab(view, TabGrid(view.name, layout.headers, {}))
        laid_out = True
    return laid_out


def _staff_digest(desk: SheetDesk) -> str:
    ids = sorted(member.staff_id for member in desk.staff)
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:20]


def _dropdowns(desk: SheetDesk, plan: _Plan, staff: str, laid_for: str | None) -> bool:
    """When the staff list changed since the dropdowns were laid (``laid_for``: its hash
    then), lay the staff dropdowns again, in the same write. True if it does."""
    if laid_for == staff:
        return False
    for view in VIEWS:
        if not any(column.staff_choices for column in view.columns):
            continue
        write = plan.tab_write(view)
        if write.layout is None and plan.tabs[view.name].laid_out:
            write.dropdowns = desk.layout(view)
    return True


def replan_wait(attempt: int) -> float:
    """Seconds to wait before re-planning after the ``attempt``-th (0-based) write that
    may or may not have been applied: 1, 2, 4, … (at most ``REPLAN_MAX_WAIT``) plus up to
    a second of jitter, as the adapter's retries wait (tenacity's wait_exponential_jitter)."""
    return min(REPLAN_MAX_WAIT, 2.0 ** attempt) + random.uniform(0, 1)


REPLAN_MAX_WAIT = 8.0


def _restore_counts(report: SyncReport, counts: tuple[int, int, int]) -> None:
    report.rows_written, report.rows_added, report.rows_removed = counts


def _count(report: SyncReport, outcomes: Mapping[str, Mapping[str, RowOutcome]]) -> None:
    for taken in outcomes.values():
        for row_id, outcome in taken.items():
            if outcome.status == "applied":
                report.edits_applied += 1
            elif outcome.status == "pending":
                report.edits_pending += 1
            else:
                report.edits_refused += 1
                report.notes.append(f"{row_id}: {outcome.note}")


# -- one writer at a time -----------------------------------------------------------------------

# How long each run holds the sheet: longer than its function may run (.chalice/config.json:
# sync_sheets 120 s, reconcile_sheets 300 s, the API's 30 s), so a lease runs out by itself
# only when its holder died. A rebuild renews its lease before each batch.
SYNC_LEASE = 150
RECONCILE_LEASE = 330
EDIT_LEASE = 45
REBUILD_LEASE = 330
# The webhook waits this long (then this long again) for a run holding the sheet to finish.
EDIT_LEASE_WAITS = (2.0, 4.0)


class SheetBusy(SheetUnavailable):
    """Another run (a sync, a reconcile, a rebuild, the webhook) holds the sheet."""


def _take_lease(desk: SheetDesk, seconds: int, report: SyncReport,
                waits: Sequence[float] = ()) -> str | None:
    """Hold the sheet for ``seconds``: the holder's id, or None (``report.busy``) when
    another run holds it, after waiting ``waits`` (with the backend's pause) between
    tries."""
    holder = uuid.uuid4().hex
    until = desk.now + timedelta(seconds=seconds)
    for wait in (*waits, None):
        if desk.store.take_sheet_lease(holder, desk.now, until):
            return holder
        if wait is not None:
            desk.backend.pause(wait)
    logger.warning("the sheet is held by another run: nothing read or written")
    report.busy = True
    return None


def _renew_lease(desk: SheetDesk, holder: str, seconds: int) -> None:
    """Hold the sheet ``seconds`` more (a long rebuild); SheetBusy if another run took it
    over meanwhile (this one was too slow)."""
    now = max(desk.now, datetime.now(UTC))
    if not desk.store.take_sheet_lease(holder, now, now + timedelta(seconds=seconds)):
        raise SheetBusy("another run took the sheet over")


def sync(desk: SheetDesk, *, limit: int = 2000, attempts: int = 3) -> SyncReport:
    """Write every dirty case's rows (see ``_sync``), holding the sheet's lease; when
    another run holds it, nothing is done (``busy``): the marks stay for the next sync."""
    report = SyncReport()
    holder = _take_lease(desk, SYNC_LEASE, report)
    if holder is None:
        return report
    try:
        return _sync(desk, limit=limit, report=report, attempts=attempts)
    finally:
        desk.store.release_sheet_lease(holder)


def _sync(desk: SheetDesk, *, limit: int = 2000, tabs: dict[str, ParsedTab] | None = None,
          also: Iterable[str] = (), report: SyncReport | None = None,
          attempts: int = 3) -> SyncReport:
    """Write every dirty case's rows (and ``also`` these cases'), taking in first any edit
    typed in those rows that has not reached the store yet.

    Rows are written where the read found them. When a write fails without saying whether
    it was applied, it is not sent again: the views are read again and the write planned
    afresh from what they show (at most ``attempts`` plans, waiting ``replan_wait``
    between them), so a lost answer never deletes or duplicates a row."""
    report = report or SyncReport()
    dirty = {mirror.case_id: mirror for mirror in desk.store.dirty_sheet_mirrors(desk.now, limit)}
    extra = [case_id for case_id in also if case_id not in dirty]
    if extra:
        found = desk.store.sheet_mirrors(extra)
        dirty.update({case_id: found.get(case_id) or Mirror(case_id, {}) for case_id in extra})
    report.dirty = len(dirty)
    staff = _staff_digest(desk)
    laid_for = desk.store.sheet_state().get("staff")
    if not dirty and laid_for == staff:
        return report
    outcomes: dict[str, dict[str, RowOutcome]] = {}
    for attempt in range(attempts):
        if tabs is None:
            tabs = _reach(desk, report, "reading the views", desk.read_all)
            if tabs is None:
                _count(report, outcomes)
                return report
        counts = (report.rows_written, report.rows_added, report.rows_removed)
        _join_tabs_to_lay_out(desk, tabs, dirty)
        cases = desk.store.get_cases(dirty)
        # Outcomes of an earlier plan stand (its notes, its applied edits): what it
        # applied now shows as unchanged in the sheet or the case. Taken in before any tab
        # is laid out again (emptied), from the rows as they were read.
        taken_now = _take_edits_in(desk, _Plan(_readable(tabs)), dirty, cases)
        plan = _Plan(dict(tabs))
        laid_out = _layouts(desk, plan)
        relaid = _dropdowns(desk, plan, staff, laid_for) or laid_out
        for case_id, taken in taken_now.items():
            outcomes.setdefault(case_id, {}).update(taken)
        # Whatever becomes of the write, the edits just applied are not taken in again.
        _remember_taken(desk, dirty, taken_now)
        rows = {case_id: _case_rows(desk, cases.get(case_id), mirror.entries,
                                    outcomes.get(case_id, {}))
                for case_id, mirror in dirty.items()}
        for case_id, case_rows in rows.items():
            plan.put_case(case_id, case_rows, report)
        sent = _send(desk, plan, report)
        if sent == SENT:
            break
        if sent == UNAVAILABLE:
            _count(report, outcomes)
            return report
        _restore_counts(report, counts)
        report.replans += 1
        tabs = None
        if attempt == attempts - 1:
            report.unavailable = True
            _count(report, outcomes)
            desk.store.mark_sheet_dirty(outcomes, desk.now)
            return report
        # A 5xx is Google in trouble: give it time before reading and planning again.
        desk.backend.pause(replan_wait(attempt))
    _count(report, outcomes)
    if relaid:
        desk.store.save_sheet_state({"staff": staff})
    if laid_out:  # the other cases' rows are written again by the next sync
        desk.store.mark_sheet_dirty(
            [c for c in desk.store.mirrored_case_ids() if c not in dirty], desk.now)
    for case_id, mirror in dirty.items():
        case = cases.get(case_id)
        next_at = next_change_at(case, desk.now) if case is not None else None
        settled = not any(o.status == "applied" for o in outcomes.get(case_id, {}).values())
        if not desk.store.save_sheet_mirror(mirror, rows[case_id].entries, settled, next_at):
            # Someone else wrote this case's mirror meanwhile: write the rows again next time.
            desk.store.mark_sheet_dirty([case_id], desk.now)
    return report


def _take_edits_in(desk: SheetDesk, plan: _Plan, mirrors: Mapping[str, Mirror],
                   cases: dict[str, Case], editor: str = ""
                   ) -> dict[str, dict[str, RowOutcome]]:
    """Take in the edits found in the rows of these cases; outcomes by case and row id.
    ``cases`` is kept up to date with what the edits changed. Who edited a row is in its
    "edited by" cell (the Apps Script writes it), else ``editor``."""
    outcomes: dict[str, dict[str, RowOutcome]] = {}
    for view in VIEWS:
        if not view.editable:
            continue
        for row in plan.tabs[view.name].rows:
            mirror = mirrors.get(row.case_id)
            if mirror is None:
                continue
            who = row.cells.get(EDITED_BY, "") or editor
            outcome = take_row_edit(desk, row, mirror.entries.get(row.row_id),
                                    cases.get(row.case_id), who)
            if outcome.status == "unchanged":
                continue
            outcomes.setdefault(row.case_id, {})[row.row_id] = outcome
            if outcome.case is not None:
                cases[row.case_id] = outcome.case
                outcome.typed = {c.key: row.cells.get(c.key, "") for c in view.editable}
                outcome.row_version = row.version
    return outcomes


def _remember_taken(desk: SheetDesk, mirrors: dict[str, Mirror],
                    outcomes: Mapping[str, Mapping[str, RowOutcome]]) -> None:
    """Before the rows are written: record that each row whose edit changed the case
    showed what was typed at the version it showed, so that row reads as unchanged from
    now on. The write may fail without being applied (the row still shows the typed
    ``add note`` or ``do``): the next plan, in this sync or the next, must not take the
    same edit in again. Saved to the store, and kept in ``mirrors`` for a re-plan."""
    for case_id, taken in outcomes.items():
        mirror = mirrors.get(case_id)
        if mirror is None:
            continue
        entries = dict(mirror.entries)
        for row_id, outcome in taken.items():
            entry = entries.get(row_id)
            version = outcome.row_version
            if outcome.case is None or entry is None or version is None:
                continue
            typed = _kept_cells(outcome.typed)
            if entry.shown_at(version) == typed:
                continue  # already remembered (an earlier plan of this sync)
            seen = {**entry.seen, version: typed}
            seen = {v: seen[v] for v in sorted(seen)[-RING:]}
            if version == entry.version:
                entry = replace(entry, cells=typed, held={}, seen=seen)
            else:
                entry = replace(entry, seen=seen)
            entries[row_id] = entry
        if entries == mirror.entries:
            continue
        saved = desk.store.save_sheet_mirror(mirror, entries, False, None)
        # Not saved (written meanwhile by someone else): kept for this sync's re-plans;
        # the final save fails the same way and marks the case for the next sync.
        mirrors[case_id] = Mirror(case_id, entries, mirror.rev + 1 if saved else mirror.rev,
                                  mirror.marker)


def _suspects(tabs: Mapping[str, ParsedTab], mirrors: Mapping[str, Mirror], *,
              edits_only: bool = False) -> set[str]:
    """The cases whose rows need a look: an edit (an editable cell that differs from what
    was written), a read-only or hidden cell changed by hand, a copied row, a row the
    store did not write, a row staff deleted. ``edits_only``: only the edits."""
    suspects = set()
    for tab in tabs.values():
        for row_id, rows in tab.by_row_id().items():
            mirror = mirrors.get(rows[0].case_id)
            entry = mirror.entries.get(row_id) if mirror else None
            if entry is None or len(rows) > 1:
                if not edits_only:
                    suspects.add(rows[0].case_id)  # a row the store did not write, or a copy
                continue
            shown = entry.shown
            if any(kept(rows[0].cells.get(c.key, "")) != shown.get(c.key, "")
                   for c in tab.view.editable):
                suspects.add(rows[0].case_id)  # an edit
            elif (not edits_only and entry.digest
                  and row_digest(tab.view, rows[0].cells) != entry.digest):
                suspects.add(rows[0].case_id)  # a read-only or hidden cell changed by hand
    if not edits_only:
        for case_id, mirror in mirrors.items():
            for row_id in mirror.entries:
                if row_id not in tabs[row_id.split("|", 1)[0]].by_row_id():
                    suspects.add(case_id)  # a row staff deleted: written again
    return suspects


def reconcile(desk: SheetDesk, *, limit: int = 2000) -> SyncReport:
    """Read every view once, take in the edits no webhook brought, put back rows staff
    deleted and cells of read-only columns staff changed, and write what is dirty: the
    scheduled safety net behind the webhook. Holds the sheet's lease (``busy`` when
    another run holds it: nothing is done)."""
    report = SyncReport()
    holder = _take_lease(desk, RECONCILE_LEASE, report)
    if holder is None:
        return report
    try:
        tabs = _reach(desk, report, "reading the views", desk.read_all)
        if tabs is None:
            return report
        in_sheet = {row.case_id for tab in tabs.values() for row in tab.rows if row.case_id}
        mirrors = desk.store.sheet_mirrors(in_sheet | set(desk.store.mirrored_case_ids()))
        suspects = _suspects(tabs, mirrors)
        return _sync(desk, limit=limit, tabs=tabs, also=sorted(suspects), report=report)
    finally:
        desk.store.release_sheet_lease(holder)


def take_edits(desk: SheetDesk, title: str, numbers: Sequence[int], editor: str
               ) -> SyncReport:
    """The Apps Script's webhook: these rows of this tab were just edited by ``editor``.
    Re-read them, apply or refuse each, and write the outcome back at once. Holds the
    sheet's lease; when another run keeps it past a short wait, nothing is read
    (``busy`` and ``unavailable``): the reconcile takes the edit in."""
    report = SyncReport()
    view = VIEWS_BY_NAME.get(title)
    if view is None or not numbers:
        return report
    holder = _take_lease(desk, EDIT_LEASE, report, EDIT_LEASE_WAITS)
    if holder is None:
        report.unavailable = True
        return report
    try:
        return _take_edits(desk, view, numbers, editor, report)
    finally:
        desk.store.release_sheet_lease(holder)


def _take_edits(desk: SheetDesk, view: View, numbers: Sequence[int], editor: str,
                report: SyncReport) -> SyncReport:
    title = view.name
    grid = _reach(desk, report, "reading edited rows (the reconcile will take them)",
                  lambda: desk.backend.read_rows(title, sorted(set(numbers))))
    if grid is None:
        return report
    edited = parse_tab(view, grid)
    case_ids = {row.case_id for row in edited.rows if row.case_id}
    if not edited.laid_out or not case_ids:
        return report
    found = desk.store.sheet_mirrors(case_ids)
    mirrors = {case_id: found.get(case_id) or Mirror(case_id, {}) for case_id in case_ids}
    cases = desk.store.get_cases(case_ids)
    tabs = {v.name: parse_tab(v, None) for v in VIEWS}
    tabs[view.name] = edited
    plan = _Plan(tabs)
    outcomes = _take_edits_in(desk, plan, mirrors, cases, editor)
    _count(report, outcomes)
    # Whatever becomes of the write, the edits just applied are not taken in again.
    _remember_taken(desk, mirrors, outcomes)
    rows = {case_id: _case_rows(desk, cases.get(case_id), mirrors[case_id].entries, taken)
            for case_id, taken in outcomes.items()}
    # Only the edited rows of this tab are written back: the other tabs follow at the next
    # sync (the case changes marked them dirty).
    write = plan.tab_write(view)
    for row in edited.rows:
        if row.row_id not in outcomes.get(row.case_id, {}):
            continue
        case_rows = rows[row.case_id]
        target = case_rows.desired.get(row.row_id)
        if target is None:
            write.deletes.append(row.number)
            continue
        write.updates[row.number] = plan.values(view, target, case_rows.entries[row.row_id])
        report.rows_written += 1
    sent = _send(desk, plan, report)
    if sent == SENT:
        for case_id, taken in outcomes.items():
            mirror = mirrors[case_id]
            entries = dict(mirror.entries)
            entries.update({row_id: entry for row_id, entry in rows[case_id].entries.items()
                            if row_id in taken})
            if not desk.store.save_sheet_mirror(mirror, entries, False, None):
                desk.store.mark_sheet_dirty([case_id], desk.now)
    else:
        # Not written, or perhaps written: the next sync reads the rows again and writes
        # them (with a refusal's note again, the row still showing the refused edit).
        report.unavailable = report.unavailable or sent == UNCERTAIN
        desk.store.mark_sheet_dirty(outcomes, desk.now)
    return report


# -- operations ---------------------------------------------------------------------------------


def rebuild(desk: SheetDesk, case_ids: Sequence[str],
            progress: Callable[[int], object] | None = None, batch: int = 500,
            views: Sequence[str] | None = None) -> SyncReport:
    """Lay the tabs (``views``: these only; default all) out afresh (header, dropdowns,
    protections, highlighting), empty them, and write the rows of these cases, ``batch``
    cases per write. Edits typed in the sheet and not taken in yet are taken in first
    (a rebuild must not wipe them). Holds the sheet's lease (SheetBusy when
    another run holds it)."""
    report = SyncReport()
    holder = _take_lease(desk, REBUILD_LEASE, report)
    if holder is None:
        raise SheetBusy("another sync is writing the sheet: try again in a minute")
    try:
        return _rebuild(desk, holder, case_ids, report, progress, batch, views)
    finally:
        desk.store.release_sheet_lease(holder)


def _rebuild(desk: SheetDesk, holder: str, case_ids: Sequence[str], report: SyncReport,
             progress: Callable[[int], object] | None, batch: int,
             views: Sequence[str] | None) -> SyncReport:
    chosen = tuple(VIEWS_BY_NAME[name] for name in views) if views else VIEWS
    tabs = _reach(desk, report, "reading the views", desk.read_all)
    if tabs is None:
        raise SheetUnavailable("the sheet could not be read")
    in_sheet = {row.case_id for tab in tabs.values() for row in tab.rows if row.case_id}
    edited = _suspects(tabs, desk.store.sheet_mirrors(in_sheet), edits_only=True)
    if edited:
        taken = _sync(desk, limit=0, tabs=tabs, also=sorted(edited))
        report.edits_applied, report.edits_refused = taken.edits_applied, taken.edits_refused
        report.edits_pending, report.notes = taken.edits_pending, taken.notes
        report.requests += taken.requests
        if taken.unavailable:
            raise SheetUnavailable("the edits in the sheet could not be taken in first")
    fresh = {view.name: parse_tab(view, None) for view in VIEWS}
    plan = _Plan(fresh)
    for view in chosen:
        layout = desk.layout(view, clear=True)
        plan.tab_write(view).layout = layout
        fresh[view.name] = parse_tab(view, TabGrid(view.name, layout.headers, {}))
    if _send(desk, plan, report) != SENT:
        raise SheetUnavailable("the sheet could not be laid out")
    everything = len(chosen) == len(VIEWS)
    if everything:
        desk.store.save_sheet_state({"staff": _staff_digest(desk)})
        desk.store.mark_sheet_dirty(desk.store.mirrored_case_ids(), desk.now)
    names = {view.name for view in chosen}
    for start in range(0, len(case_ids), batch):
        _renew_lease(desk, holder, REBUILD_LEASE)
        chunk = case_ids[start:start + batch]
        cases = desk.store.get_cases(chunk)
        mirrors = desk.store.sheet_mirrors(chunk)
        plan = _Plan(dict(fresh))
        rows = {}
        for case_id in chunk:
            old = mirrors.get(case_id) or Mirror(case_id, {})
            case_rows = _case_rows(desk, cases.get(case_id), old.entries, {})
            if not everything:  # the other views' rows stay as the mirror has them
                kept = {row_id: entry for row_id, entry in old.entries.items()
                        if row_id.split("|", 1)[0] not in names}
                entries = {row_id: entry for row_id, entry in case_rows.entries.items()
                           if row_id.split("|", 1)[0] in names}
                case_rows = _CaseRows(case_rows.desired, {**kept, **entries})
            rows[case_id] = case_rows
            plan.put_case(case_id, case_rows, report, chosen)
        if _send(desk, plan, report) != SENT:
            raise SheetUnavailable("the sheet stopped answering during the rebuild")
        for case_id, case_rows in rows.items():
            case = cases.get(case_id)
            if not desk.store.save_sheet_mirror(
                    mirrors.get(case_id) or Mirror(case_id, {}), case_rows.entries,
                    everything, next_change_at(case, desk.now) if case else None):
                desk.store.mark_sheet_dirty([case_id], desk.now)
        if progress is not None:
            progress(len(chunk))
    # Anything that changed during the rebuild is written by the next sync.
    return report


@dataclass(frozen=True)
class Difference:
    view: str
    case_number: str
    row_id: str
    what: str  # "missing", "extra", "copy", or the column that differs
    sheet: str = ""
    store: str = ""


def check(desk: SheetDesk, case_ids: Iterable[str]) -> list[Difference]:
    """Every difference between the sheet and what the store says it should show."""
    tabs = desk.read_all()
    found = {name: tab.by_row_id() for name, tab in tabs.items()}
    in_sheet = {row.case_id for tab in tabs.values() for row in tab.rows if row.case_id}
    cases = desk.store.get_cases(set(case_ids) | in_sheet)
    differences = []
    for view in VIEWS:
        if not tabs[view.name].laid_out:
            differences.append(Difference(view.name, "", "", "tab missing or header changed"))
    desired_all: dict[str, Row] = {}
    for case in cases.values():
        desired_all.update(rows_for(case, desk.now, desk.zone, desk.language))
    for row_id, row in sorted(desired_all.items()):
        rows = found.get(row.view, {}).get(row_id, [])
        number = row.cells.get("case_number", "")
        if not rows:
            differences.append(Difference(row.view, number, row_id, "missing"))
            continue
        if len(rows) > 1:
            differences.append(Difference(row.view, number, row_id, "copy"))
        view = VIEWS_BY_NAME[row.view]
        sheet_cells = rows[0].cells
        for column in view.columns:
            want, have = row.cells.get(column.key, ""), sheet_cells.get(column.key, "")
            if want != have:
                differences.append(Difference(row.view, number, row_id, column.key, have, want))
        if str(row.version) != sheet_cells.get(VERSION, ""):
            differences.append(Difference(row.view, number, row_id, VERSION,
                                          sheet_cells.get(VERSION, ""), str(row.version)))
    for name, rows_by_id in found.items():
        for row_id in rows_by_id:
            if row_id not in desired_all:
                differences.append(Difference(name, "", row_id, "extra"))
    return differences
