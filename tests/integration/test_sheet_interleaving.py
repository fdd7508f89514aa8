"""Staff edits in the sheet, API actions and syncs, interleaved at random — with a 429
storm, an outage and lost webhooks — end with the sheet and the store agreeing, every
accepted API change kept, and nothing typed in the sheet reaching a case unvalidated."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.domain.staff import Role
from chalicelib.services import sheets
from tests.fakes.google_sheets import FakeGoogleSheets
from tests.integration.test_sheet_google import (
    add,
    by_case,
    column_of,
    desk,
    post_edit,
    row_of,
)
from tests.integration.test_staff_api import act, report

OWNERS = ("kim", "lee", "sue")


@pytest.mark.parametrize("seed", range(1, 6))
def test_random_interleavings_end_with_sheet_and_store_agreeing(
    client: Any, google: tuple[FakeGoogleSheets, str], seed: int
) -> None:
    fake, sheet_id = google
    rng = random.Random(seed)
    api = add("sue", Role.SUPERVISOR, "sue@example.com")
    for staff_id in ("kim", "lee"):
        add(staff_id, Role.SUPERVISOR, f"{staff_id}@example.com")
    cases = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
             for n in range(3)]
    sheets.sync(desk())
    accepted: list[tuple[str, int, str]] = []  # (case id, version produced, owner) by API
    typed: set[tuple[str, str]] = set()  # (case id, owner) typed in the sheet
    for _ in range(18):
        step = rng.choice(["api", "api", "edit", "edit", "bad_edit", "sync", "reconcile",
                           "storm", "new"])
        case = rng.choice(cases)
        if step == "api":
            current = bootstrap.case_store().get_case(case["case_id"])
            assert current is not None
            owner = rng.choice(OWNERS)
            answer = act(client, api, case["case_id"], "assign_owner", current.version,
                         {"owner": owner})
            if answer.status_code == 200:
                accepted.append((case["case_id"], current.version + 1, owner))
        elif step in ("edit", "bad_edit"):
            if case["case_number"] not in by_case(fake, sheet_id, "Cases"):
                continue
            row = row_of(fake, sheet_id, "Cases", case["case_number"])
            editor = rng.choice(["kim", "lee"])
            owner = rng.choice(OWNERS[:2]) if step == "edit" else "nobody"
            if step == "edit":
                typed.add((case["case_id"], owner))
            fake.set_cell(sheet_id, "Cases", f"{column_of(fake, sheet_id, 'Cases', 'owner')}{row}",
                          owner)
            fake.set_cell(sheet_id, "Cases",
                          f"{column_of(fake, sheet_id, 'Cases', 'edited by')}{row}",
                          f"{editor}@example.com")
            fate = rng.choice(["posted", "lost", "storm"])
            if fate == "storm":
                fake.fail_next(8, status=429)
            if fate != "lost":
                answer = post_edit(client, sheet_id, "Cases", row, f"{editor}@example.com")
                assert answer.status_code in (200, 503), answer.body
        elif step == "sync":
            sheets.sync(desk())
        elif step == "reconcile":
            sheets.reconcile(desk())
        elif step == "storm":
            fake.fail_next(rng.randint(1, 12), status=rng.choice([429, 500, 503]))
            sheets.sync(desk())
        else:
            cases.append(report(client, customer={"name": "New", "email": "new@example.com"}))
    # Google is calm again: the next reconcile (and the sync it runs) settles everything.
    fake.set_down(False)
    fake.clear_faults()  # the rest of any storm blows over
    sheets.reconcile(desk())
    sheets.sync(desk())
    assert sheets.check(desk(), [c["case_id"] for c in cases]) == []
    store = bootstrap.case_store()
    for case in cases:
        history = store.case_history(case["case_id"])
        owners = [e for e in history if e.action == "assign_owner"]
        # Every accepted API change is in the history, at the version it produced.
        for case_id, version, owner in accepted:
            if case_id == case["case_id"]:
                assert any(e.version == version and (e.details or {}).get("owner") == owner
                           for e in owners)
        # What came from the sheet was typed there by staff, never a stale value sent back.
        for event in owners:
            if event.actor in ("staff:kim", "staff:lee"):
                assert (case["case_id"], (event.details or {})["owner"]) in typed
        final = store.get_case(case["case_id"])
        assert final is not None and final.owner != "nobody"
        latest = owners[0] if owners else None
        assert final.owner == ((latest.details or {}).get("owner") if latest else None)
        shown = by_case(fake, sheet_id, "Cases").get(case["case_number"])
        if final.is_open:
            assert shown is not None and shown["owner"] == (final.owner or "")
            assert shown["version"] == str(final.version)
