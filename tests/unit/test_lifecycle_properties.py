"""Random sequences of actions, by people of every role, with plausible (and some wrong)
parameters, on cases of every kind: the lifecycle keeps its invariants whatever happens.

- a refused action raises ActionRefused (never another exception) and changes nothing;
- an accepted change has exactly one event, whose version is the case's new version, and the
  version rises by exactly one; updated_at is the time of the action;
- a closed case accepts only reopen; a closed or cancelled case is not open and owes nothing;
- available_actions lists exactly the actions not refused for the person's role, the case's
  status or its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chalicelib.domain.case import Case, CaseKind, CaseStatus
from chalicelib.domain.lifecycle import (
    ACTIONS,
    REMEDIES_BY_KIND,
    ActionRefused,
    PolicyPromises,
    apply_action,
    available_actions,
)
from chalicelib.domain.policies import FieldServicePolicy, Partner, Policies
from chalicelib.domain.remedies import REFUND_REMEDIES, Department, PaymentMethod, Remedy
from chalicelib.domain.staff import Role, StaffMember
from chalicelib.domain.units import Unit
from tests.unit.test_lifecycle import new_case, snapshot
from tests.unit.test_projects import PROJECT_PARAMS

S = CaseStatus
START = datetime(2025, 9, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PROMISES = PolicyPromises(Policies(field_service=FieldServicePolicy(
    dealers={"east": Partner(name="East Dealer", regions=("Shanghai",))},
    suppliers={"hydraulics": Partner(name="Hydraulics Ltd")},
)))
# The registered unit the field-service cases are about, and the staff they may name.
UNIT = Unit(serial_no="FL-1", model="CPD30", customer_name="Wang Fang",
            customer_email="wang.fang@example.com", region="Shanghai",
            sold_on=date(2025, 3, 1), warranty_months=12, warranty_hours=1500)
STAFF = (StaffMember(staff_id="technician-1", name="Li Technician", role=Role.TECHNICIAN),)
# Every params model forbids unknown fields: this one fails validation, and only validation,
# so an action refused with "the parameters are not right" passed the role, status and kind.
PROBE = {"__probe__": 1}
PASSED_THE_GATES = "the parameters are not right"


def staff(role: Role, active: bool = True) -> StaffMember:
    return StaffMember(staff_id=f"{role.value.replace('_', '-')}-1", name=role.value,
                       role=role, active=active)


# -- parameters, per params model -------------------------------------------------------

words = st.one_of(
    st.sampled_from(["Sorry for the wait.", "Fits the 2024 model.", "  padded  ", "王芳", "x"]),
    st.text(min_size=0, max_size=20),
)
short = st.one_of(st.sampled_from(["SF1234567890", "TX-1", "Leo", "WS-10OFF"]),
                  st.text(max_size=10))
# Either side of the default approval limit (refunds above 500 wait for a supervisor).
amount = st.one_of(
    st.sampled_from(["300", "500", "500.01", "800"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1500), places=2).map(str),
)
maybe = st.one_of(st.none(), words)


def item(remedy: str, amount_optional: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    if Remedy(remedy) in REFUND_REMEDIES:
        if amount_optional:
            return st.fixed_dictionaries({"remedy": st.just(remedy)}, optional={"amount": amount})
        return st.fixed_dictionaries({"remedy": st.just(remedy), "amount": amount})
    return st.fixed_dictionaries({"remedy": st.just(remedy)}, optional={"note": words})


def decide(case: Case) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly remedies that fit the kind, refunds with their amounts; sometimes anything."""
    fitting = sorted(REMEDIES_BY_KIND.get(case.kind, {r.value for r in Remedy}))
    any_remedy = st.sampled_from([r.value for r in Remedy])
    return st.fixed_dictionaries(
        {
            "items": st.one_of(
                st.lists(st.sampled_from(fitting).flatmap(item), min_size=1, max_size=3),
                st.lists(
                    any_remedy.flatmap(lambda remedy: item(remedy, amount_optional=True)),
                    min_size=1,
                    max_size=3,
                ),
            )
        }
    )


def post_refund(case: Case) -> st.SearchStrategy[dict[str, Any]]:
    decided = [str(case.refund.amount)] if case.refund else []
    return st.fixed_dictionaries(
        {
            "amount": st.one_of(st.sampled_from(decided), amount) if decided else amount,
            "method": st.sampled_from([m.value for m in PaymentMethod]),
            "reference": short,
        }
    )


def listing_corrected(case: Case) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"feedback_number": st.integers(0, len(case.feedback) + 1)})


def fixed(**fields: st.SearchStrategy[Any]) -> Callable[[Case], st.SearchStrategy[dict[str, Any]]]:
    strategy = st.fixed_dictionaries(fields)
    return lambda case: strategy


def fixed_optional(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> Callable[[Case], st.SearchStrategy[dict[str, Any]]]:
    strategy = st.fixed_dictionaries(required, optional=optional)
    return lambda case: strategy


note = fixed(text=words)
nothing = fixed()
tracking = fixed_optional({"tracking_no": short}, {"carrier": maybe})
PARAMS: dict[str, Callable[[Case], st.SearchStrategy[dict[str, Any]]]] = {
    "add_note": note,
    "message_customer": note,
    "assign_owner": fixed(owner=st.sampled_from(["agent-1", "supervisor-1", "bob", "Bad Id"])),
    "request_photos": nothing,
    "mark_complaint_true": nothing,
    "mark_complaint_not_true": note,
    "explain": fixed_optional(
        {"reason": st.sampled_from(["misreading", "photo_lighting", "other"]), "text": words},
        {"offer": st.sampled_from(["none", "discount", "gift"]), "offer_detail": maybe},
    ),
    "feedback_to_department": fixed(
        department=st.sampled_from([d.value for d in Department]), root_cause=words
    ),
    "listing_corrected": listing_corrected,
    "decide_resolution": decide,
    "approve_resolution": nothing,
    "reject_resolution": note,
    "return_tracking_given": tracking,
    "return_received": fixed(signed_by=short),
    "return_inspected": fixed_optional({"ok": st.booleans()}, {"note": maybe}),
    "return_back_in_stock": nothing,
    "submit_refund_request": fixed(method=st.sampled_from([m.value for m in PaymentMethod])),
    "post_refund": post_refund,
    "tell_customer_refunded": nothing,
    "reship": tracking,
    "explain_tracking": nothing,
    "check_tracking": fixed_optional({"online": st.booleans()}, {"note": maybe}),
    "request_repair_fee": fixed(amount=amount, repairer=short),
    "pay_repair_fee": fixed(reference=short),
    "answer_enquiry": note,
    "change_address": fixed(address=words),
    "register_wholesale_account": fixed(account=short, coupon_code=short),
    "apologise": note,
    "resolve": nothing,
    "close": nothing,
    "reopen": note,
    "cancel": note,
    "record_follow_up_call": fixed_optional(
        {"outcome": st.sampled_from(["satisfied", "not_satisfied", "no_answer", "question"])},
        {"note": maybe, "question": maybe},
    ),
    "answer_question": note,
    # The field-service flow.
    "check_warranty": fixed_optional({}, {
        "serial_no": st.sampled_from(["FL-1", "FL-404"]),
        "operating_hours": st.sampled_from([0, 1499, 1500, 1501, 9000]),
        "misuse": st.booleans(), "original_parts": st.booleans(), "note": maybe,
    }),
    "quote_fees": fixed(amount=amount, description=words),
    "record_fee_consent": fixed(signed_by=short),
    "dispatch": fixed_optional(
        {"party": st.sampled_from(["technician", "dealer", "supplier"])},
        {"to": st.sampled_from(["technician-1", "east", "hydraulics", "nobody"]),
         "region": st.sampled_from(["Shanghai", "Mars"])},
    ),
    "party_replied": nothing,
    "arrived_on_site": nothing,
    "unit_running": nothing,
    "lend_unit": fixed(description=short),
    "record_service_form": fixed_optional(
        {"work": words, "hours": st.sampled_from(["1.5", "0", "3", "-1"])},
        {"parts_used": st.lists(st.fixed_dictionaries({"part_no": short}), max_size=2)},
    ),
    "service_form_signed_on_paper": fixed(signed_by=short),
    "request_parts": fixed_optional(
        {"lines": st.lists(st.fixed_dictionaries({
            "part_no": st.sampled_from(["P-1", "P-2"]),
            "quantity": st.integers(0, 4),
            "unit_price": st.sampled_from(["100", "250", "499.99", "500", "500.01", "1999"]),
        }), min_size=1, max_size=3)},
        {"beyond_warranty": st.booleans(), "urgent_local": st.booleans()},
    ),
    "approve_parts": fixed(number=st.integers(0, 3)),
    "turn_down_parts": fixed(number=st.integers(0, 3), reason=words),
    "ship_parts": fixed(number=st.integers(0, 3), tracking_no=short),
    "settle_local_purchase": fixed(number=st.integers(0, 3), receipt_ref=short),
    "old_part_received": fixed(number=st.integers(0, 3)),
    "inspect_old_part": fixed_optional(
        {"number": st.integers(0, 3), "accepted": st.booleans()},
        {"fault": st.sampled_from(["incomplete", "not_warranty", "not_original"]),
         "note": maybe},
    ),
    "set_fees": fixed(amount=amount, technician=st.sampled_from(["technician-1", "ghost"]),
                      on_the_spot=st.booleans()),
    "agree_later_payment": nothing,
    "fees_collected": fixed(reference=short),
    "report_abnormal_problem": note,
    "flag_major_quality_problem": note,
    "register_unit_return": note,
    "inspect_returned_unit": note,
    "record_rework": note,
}
PARAMS.update(PROJECT_PARAMS)
wrong_params = st.one_of(
    st.none(),
    st.just(PROBE),
    st.dictionaries(st.sampled_from(["text", "amount", "items", "x"]),
                    st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=2),
)


# Steps that do not move a case along (or end it): the flow takes them less often.
ASIDE = frozenset(
    {"add_note", "message_customer", "assign_owner", "feedback_to_department", "cancel"}
)


def test_every_action_has_a_params_strategy() -> None:
    assert set(PARAMS) == set(ACTIONS)


# -- the machine ------------------------------------------------------------------------


# A closed case is reopened, or followed up (the call after it, the question from a call).
# Parts, old parts and fees of a field-service case are followed after it closes.
AFTER_CLOSING = frozenset({
    "reopen", "record_follow_up_call", "answer_question", "approve_parts", "turn_down_parts",
    "ship_parts", "settle_local_purchase", "old_part_received", "inspect_old_part",
    "fees_collected",
})


class CaseLifecycle(RuleBasedStateMachine):
    case: Case
    now: datetime

    @initialize(kind=st.sampled_from(list(CaseKind)))
    def open_a_case(self, kind: CaseKind) -> None:
        self.case = new_case(kind, at=START)
        self.now = START
        self.changes = 0

    def apply(self, name: str, params: Any, actor: StaffMember, hours: int) -> None:
        self.now += timedelta(hours=hours)
        before = self.case
        was = before.model_dump()
        offered = name in available_actions(before, actor)
        try:
            change = apply_action(
                before, name, params, actor=actor, now=self.now, promises=PROMISES,
                unit=UNIT, staff=STAFF,
            )
        except ActionRefused as refusal:
            assert refusal.reason.strip()
            assert all(
                e["field"] == "action" or e["field"].startswith("params") for e in refusal.errors
            )
            assert before.model_dump() == was  # nothing changed
            assert self.case is before
            return
        after, event = change.case, change.event
        assert actor.active and offered
        assert before.status is not S.CLOSED or name in AFTER_CLOSING
        assert after.version == before.version + 1
        assert event.version == after.version
        assert (event.case_id, event.action, event.actor, event.at) == (
            before.case_id, name, actor.actor, self.now,
        )
        assert after.updated_at == self.now
        assert (after.case_id, after.kind, after.created_at) == (
            before.case_id, before.kind, before.created_at,
        )
        old, new = snapshot(before), snapshot(after)
        changed = {key for key in new if new[key] != old[key]}
        assert event.before == {key: old[key] for key in changed}
        assert event.after == {key: new[key] for key in changed}
        assert before.model_dump() == was
        self.case = after
        self.changes += 1
        note_event(f"reached {after.status.value}")
        note_event(f"did {name}")

    @rule(
        name=st.sampled_from(sorted(ACTIONS)),
        role=st.sampled_from(list(Role)),
        active=st.booleans(),
        wrong=st.booleans(),
        hours=st.integers(0, 100),
        data=st.data(),
    )
    def anyone_tries_anything(
        self, name: str, role: Role, active: bool, wrong: bool, hours: int, data: st.DataObject
    ) -> None:
        params = data.draw(wrong_params if wrong else PARAMS[name](self.case), label="params")
        self.apply(name, params, staff(role, active), hours)

    @rule(steps=st.integers(1, 4), data=st.data())
    def the_flow_moves_on(self, steps: int, data: st.DataObject) -> None:
        """A few steps the case is ready for, each by someone who may take it, mostly with
        good parameters and seldom a note or a cancellation: what takes random cases deep
        into the flow and all the way to closed."""
        for _ in range(steps):
            who: dict[str, list[Role]] = {}
            for role in Role:
                for name in available_actions(self.case, staff(role)):
                    who.setdefault(name, []).append(role)
            if not who:  # a repair request: not a shop case, nothing applies
                return
            onward = sorted(set(who) - ASIDE)
            aside = data.draw(st.integers(0, 9), label="aside") == 0 or not onward
            name = data.draw(st.sampled_from(sorted(who) if aside else onward), label="action")
            role = data.draw(st.sampled_from(who[name]), label="role")
            params = data.draw(PARAMS[name](self.case), label="params")
            hours = data.draw(st.integers(0, 100), label="hours")
            self.apply(name, params, staff(role), hours)

    @rule(role=st.sampled_from(list(Role)), active=st.booleans())
    def available_actions_are_exactly_those_past_role_status_and_kind(
        self, role: Role, active: bool
    ) -> None:
        actor = staff(role, active)
        offered = set(available_actions(self.case, actor))
        for name in ACTIONS:
            try:
                apply_action(self.case, name, PROBE, actor=actor, now=self.now,
                             promises=PROMISES, unit=UNIT, staff=STAFF)
            except ActionRefused as refusal:
                assert (refusal.reason == PASSED_THE_GATES) == (name in offered), (
                    name, refusal.reason,
                )
            else:
                raise AssertionError(f"{name} accepted {PROBE}")

    @invariant()
    def one_version_per_change(self) -> None:
        assert self.case.version == 1 + self.changes

    @invariant()
    def closed_and_cancelled_cases_are_done(self) -> None:
        case = self.case
        if case.status in (S.CLOSED, S.CANCELLED):
            assert not case.is_open
            assert case.next_due_at is None
        else:
            assert case.is_open
        if case.status is S.CLOSED:
            for role in Role:
                assert set(available_actions(case, staff(role))) <= AFTER_CLOSING


CaseLifecycle.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCaseLifecycle = CaseLifecycle.TestCase
