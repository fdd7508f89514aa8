"""The body the Apps Script posts to /api/sheets/edits (imported when that route runs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS = 500  # the script splits a larger edit into several posts


class SheetEdits(BaseModel):
    """What the Apps Script posts: which rows of which tab someone edited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spreadsheet_id: str | None = Field(default=None, max_length=200)
    sheet: str = Field(min_length=1, max_length=100)
    rows: list[int] = Field(max_length=MAX_ROWS)
    editor: str = Field(default="", max_length=254)
