"""The batchUpdate split: every body sent stays within the payload limit, counted as the
JSON actually sent, however many small requests a sync carries (row deletes, cell updates)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.google_sheets import GoogleSheet


def batcher(limit: int) -> GoogleSheet:
    sheet = GoogleSheet.__new__(GoogleSheet)  # no client: only the split is used
    sheet._max_payload = limit
    return sheet


def delete_row(row: int) -> dict[str, Any]:
    return {"deleteDimension": {"range": {"sheetId": 7, "dimension": "ROWS",
                                          "startIndex": row, "endIndex": row + 1}}}


def update_cell(row: int, text: str) -> dict[str, Any]:
    return {"updateCells": {"start": {"sheetId": 7, "rowIndex": row, "columnIndex": 0},
                            "rows": [{"values": [{"userEnteredValue": {"stringValue": text}}]}],
                            "fields": "userEnteredValue"}}


def test_thousands_of_small_requests_are_cut_below_the_limit_with_nothing_lost() -> None:
    requests = [delete_row(n) for n in range(5_000)] + [
        update_cell(n, "王芳 owner ann") for n in range(5_000)]

    batches = batcher(20_000)._batches(requests)

    assert len(batches) > 1
    assert all(len(json.dumps(batch).encode()) <= 20_000 for batch in batches)
    assert [r for batch in batches for r in batch["requests"]] == requests


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=200),
       limit=st.integers(min_value=1_000, max_value=50_000))
def test_every_body_fits_whatever_the_cells_hold(texts: list[str], limit: int) -> None:
    requests = [update_cell(n, text) for n, text in enumerate(texts)]

    batches = batcher(limit)._batches(requests)

    assert all(len(json.dumps(batch).encode()) <= limit for batch in batches)
    assert [r for batch in batches for r in batch["requests"]] == requests
