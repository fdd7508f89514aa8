"""Staff edits in the sheet (Cases owner and notes, Refunds method and reference), API
actions and syncs, interleaved at random — with a 429 storm, 5xx storms, writes applied
whose answer was lost, writes failing unapplied right after a note was taken in, and lost
webhooks — end with the sheet and the store agreeing,
every accepted API change kept unless a later change made on top of it replaced it, and
nothing typed in the sheet reaching a case unvalidated.

Not covered here (no row without moving the clock or the field-service policies): the
Follow-ups outcome and the Parts tracking number; their edits go through the same
take_row_edit as the columns below."""

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


def refund_case(client: Any, api: str, n: int) -> dict[str, Any]:
    """A case with a full refund decided: a row in Cases and one in Refunds."""
    receipt = report(client, customer={"name": f"R{n}", "email": f"r{n}@example.com"})
    answer = act(client, api, receipt["case_id"], "mark_complaint_true", 1)
    assert answer.status_code == 200, answer.body
    answer = act(client, api, receipt["case_id"], "decide_resolution", 2,
                 {"items": [{"remedy": "full_refund", "amount": "20.00"}]})
    assert answer.status_code == 200, answer.body
    return receipt


def type_cells(fake: FakeGoogleSheets, sheet_id: str, title: str, case_number: str,
               cells: dict[str, str], editor: str) -> tuple[int, int]:
    """A person typing into a row; returns its row number and the version it showed."""
    row = row_of(fake, sheet_id, title, case_number)
    shown = by_case(fake, sheet_id, title)[case_number]
    for key, value in {**cells, "edited by": editor}.items():
        fake.set_cell(sheet_id, title, f"{column_of(fake, sheet_id, title, key)}{row}", value)
    return row, int(shown["version"])


@pytest.mark.parametrize("seed", range(1, 6))
def test_random_interleavings_end_with_sheet_and_store_agreeing(
    client: Any, google: tuple[FakeGoogleSheets, str], seed: int
) -> None:
    fake, sheet_id = google
    rng = random.Random(seed)
    api = add("sue", Role.SUPERVISOR, "sue@example.com")
    for staff_id in ("kim", "lee"):
        add(staff_id, Role.SUPERVISOR, f"{staff_id}@example.com")
    add("fin", Role.FINANCE, "fin@example.com")
    cases = [report(client, customer={"name": f"C{n}", "email": f"c{n}@example.com"})
             for n in range(3)]
    refunds = [refund_case(client, api, n) for n in range(2)]
    cases += refunds
    sheets.sync(desk())
    # Every accepted API owner change: (case id, version produced, owner).
    accepted: list[tuple[str, int, str]] = []
    # Owners typed in the sheet: (case id, owner, version the row showed).
    typed: list[tuple[str, str, int]] = []
    notes: set[tuple[str, str]] = set()  # (case id, note typed)
    references: set[tuple[str, str]] = set()  # (case id, refund reference typed)
    for step_number in range(22):
        step = rng.choice(["api", "api", "edit", "edit", "bad_edit", "note", "refund",
                           "sync", "reconcile", "storm", "lost_answer", "new",
                           "note_write_fails"])
        case = rng.choice(cases)
        if step == "api":
            current = bootstrap.case_store().get_case(case["case_id"])
            assert current is not None
            owner = rng.choice(OWNERS)
            answer = act(client, api, case["case_id"], "assign_owner", current.version,
                         {"owner": owner})
            if answer.status_code == 200:
                accepted.append((case["case_id"], current.version + 1, owner))
        elif step in ("edit", "bad_edit", "note"):
            if case["case_number"] not in by_case(fake, sheet_id, "Cases"):
                continue
            editor = f"{rng.choice(['kim', 'lee'])}@example.com"
            if step == "note":
                text = f"note {step_number}"
                row, _ = type_cells(fake, sheet_id, "Cases", case["case_number"],
                                    {"add_note": text}, editor)
                notes.add((case["case_id"], text))
            else:
                owner = rng.choice(OWNERS[:2]) if step == "edit" else "nobody"
                row, version = type_cells(fake, sheet_id, "Cases", case["case_number"],
                                          {"owner": owner}, editor)
                if step == "edit":
                    typed.append((case["case_id"], owner, version))
            fate = rng.choice(["posted", "lost", "storm"])
            if fate == "storm":
                fake.fail_next(8, status=429)
            if fate != "lost":
                answer = post_edit(client, sheet_id, "Cases", row, editor)
                assert answer.status_code in (200, 503), answer.body
        elif step == "refund":
            refund = rng.choice(refunds)
            stored = bootstrap.case_store().get_case(refund["case_id"])
            in_sheet = by_case(fake, sheet_id, "Refunds").get(refund["case_number"])
            if stored is None or stored.refund is None or in_sheet is None:
                continue
            if stored.refund.state == "to_request":
                cells, editor = {"method": rng.choice(["paypal", "bank_transfer"])}, "kim"
            else:
                reference = f"{2026112322001412345678 + step_number}"
                cells, editor = {"reference": reference}, "fin"
                references.add((refund["case_id"], reference))
            row, _ = type_cells(fake, sheet_id, "Refunds", refund["case_number"], cells,
                                f"{editor}@example.com")
            if rng.random() < 0.5:
                post_edit(client, sheet_id, "Refunds", row, f"{editor}@example.com")
        elif step == "sync":
            sheets.sync(desk())
        elif step == "reconcile":
            sheets.reconcile(desk())
        elif step == "storm":
            fake.fail_next(rng.randint(1, 12), status=rng.choice([429, 500, 503]))
            sheets.sync(desk())
        elif step == "note_write_fails":
            # A note typed, taken in, then the write fails without being applied (a 5xx,
            # or 429s until the retries give up): the note must not go in again.
            if case["case_number"] not in by_case(fake, sheet_id, "Cases"):
                continue
            editor = f"{rng.choice(['kim', 'lee'])}@example.com"
            text = f"note {step_number}"
            row, _ = type_cells(fake, sheet_id, "Cases", case["case_number"],
                                {"add_note": text}, editor)
            notes.add((case["case_id"], text))
            fake.fail_next(rng.choice([1, 2, 3, 20]), status=rng.choice([429, 500, 503]),
                           kinds="writes")
            how = rng.choice(["webhook", "sync", "reconcile"])
            if how == "webhook":
                answer = post_edit(client, sheet_id, "Cases", row, editor)
                assert answer.status_code in (200, 503), answer.body
            else:
                getattr(sheets, how)(desk())
            fake.clear_faults()
            sheets.reconcile(desk())
            history = bootstrap.case_store().case_history(case["case_id"])
            assert sum(1 for e in history if e.action == "add_note"
                       and (e.details or {}).get("text") == text) <= 1, text
        elif step == "lost_answer":
            # The write is applied, then its answer is lost: never resent as it was.
            fake.fail_next(rng.randint(1, 2), status=rng.choice([500, 503]), kinds="writes",
                           apply=True)
            rng.choice([sheets.sync, sheets.reconcile])(desk())
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
        case_id = case["case_id"]
        history = store.case_history(case_id)
        owners = [e for e in history if e.action == "assign_owner"]
        # Every accepted API change is in the history, at the version it produced.
        for accepted_id, version, owner in accepted:
            if accepted_id == case_id:
                assert any(e.version == version and (e.details or {}).get("owner") == owner
                           for e in owners)
        # An owner from the sheet was typed there on a row that showed every owner change
        # accepted before it: a stale row never overwrites an accepted change.
        for event in owners:
            if event.actor not in ("staff:kim", "staff:lee"):
                continue
            owner, produced = (event.details or {})["owner"], event.version or 0
            assert any(
                typed_id == case_id and typed_owner == owner and base < produced
                and not any(a_id == case_id and base < version < produced
                            for a_id, version, _ in accepted)
                for typed_id, typed_owner, base in typed
            ), (event, typed, accepted)
        # The case's owner is the last accepted write of the owner, whoever made it.
        final = store.get_case(case_id)
        assert final is not None and final.owner != "nobody"
        latest = owners[0] if owners else None
        assert final.owner == ((latest.details or {}).get("owner") if latest else None)
        api_last = max((a for a in accepted if a[0] == case_id), default=None,
                       key=lambda a: a[1])
        if api_last is not None and final.owner != api_last[2]:
            # Replaced only by a change made after it, on top of it.
            assert latest is not None and (latest.version or 0) > api_last[1]
        # Notes and refund references from the sheet are ones typed, each taken once.
        added = [(e.details or {}).get("text") for e in history if e.action == "add_note"
                 and e.actor in ("staff:kim", "staff:lee")]
        assert len(added) == len(set(added)), added
        for noted_id, text in notes:
            if noted_id == case_id:
                assert added.count(text) <= 1, text
        assert all((case_id, text) in notes for text in added)
        posted = [(e.details or {}).get("reference") for e in history
                  if e.action == "post_refund"]
        assert len(posted) <= 1 and all((case_id, ref) in references for ref in posted)
        if final.refund is not None and final.refund.reference:
            assert (case_id, final.refund.reference) in references
        shown = by_case(fake, sheet_id, "Cases").get(case["case_number"])
        if final.is_open:
            assert shown is not None and shown["owner"] == (final.owner or "")
            assert shown["version"] == str(final.version)
