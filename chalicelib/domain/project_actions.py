"""The actions of the project kinds: installation projects (安装项目) and workshop repairs
(送修). The deadlines their records hold are `projects.project_timers`.

**Installation project** [002]: the 15 milestones of `projects.Milestone`, a fixed
checklist. `plan_milestone` gives one a planned date (the owner is reminded when that day
ends with the milestone not ticked); `tick_milestone` records the day it was done
(today unless said; never a day still to come), who ticked it and a note; the first tick
puts the project in progress. A mistake is taken back with `untick_milestone` by a
supervisor or the service director, with the reason; the event keeps the tick undone.

Milestones may be ticked in any order (production is followed while drawings are approved,
user details are confirmed whenever the customer gives them), except where the seed says
a step waits for another ("…方可等待出货命令", "…方可等待安装命令") and where money follows
acceptance. Those steps (PREREQUISITES) refuse to be ticked before the steps they wait for,
or with an earlier date than theirs; a step others wait for is unticked only after them:
delivery note checked → shipment confirmed → goods and installers on site → goods
accepted; drawings approved and goods accepted → installation supervised → project
accepted → final settlement.

Who ticks what (TICKED_BY): the front line (agents, supervisors, the service director) all
of them but the money; technicians the site work (measurement, drawings, on site,
acceptance of goods, installation, project acceptance); logistics the delivery note and the
arrival on site; finance alone the prepayment and the final settlement (财务确认到帐).

**Workshop repair** [004]: the device's way through the shop is `projects.WorkshopStage`;
each action says which stages it takes and refuses in any other, naming where the device
is. `receive_device` (accessories, visible damage, the customer's typed signature on the
intake form) → `quote_repair` (a new quote replaces one not yet answered) → the customer's
answer, `quote_approved` or `quote_declined` → `repair_in_house`, or
`send_to_manufacturer` (due back at a time; `check_manufacturer_progress` within 12 hours
of it, which the manufacturer_return timer reminds) and `back_from_manufacturer` →
`full_check` (failed: back to repair) → `ready_for_pickup` (the customer is e-mailed) →
`device_collected` (signed for). `settle_repair` records the payment, at the counter
before the device is handed over or after it; a repair quoted above zero is not resolved
until it is settled. A declined quote goes straight to `ready_for_pickup` (returned
unrepaired) and needs no settlement.

Pure domain code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field

from chalicelib.domain.actions import (
    Action,
    ActionRefused,
    Context,
    CustomerMessage,
    NoParams,
    NoteParams,
    Outcome,
    ShopPromises,
    Short,
    Text,
    _params,
    refuse,
)
from chalicelib.domain.case import Case, CaseKind, CaseStatus
from chalicelib.domain.projects import (
    MILESTONE_LABELS,
    FullCheck,
    InstallationProject,
    ManufacturerRepair,
    Milestone,
    MilestoneTick,
    WorkshopIntake,
    WorkshopJob,
    WorkshopQuote,
    WorkshopSettlement,
    WorkshopStage,
)
from chalicelib.domain.staff import FRONT_LINE, Role

S = CaseStatus
M = Milestone
W = WorkshopStage
INSTALLATION = frozenset({CaseKind.INSTALLATION_PROJECT})
WORKSHOP = frozenset({CaseKind.WORKSHOP_REPAIR})
# The project kinds are worked while new or in progress (a reopened project with work left
# is in progress again); what each step needs beyond that is checked on the record.
WORKING = frozenset({S.NEW, S.IN_PROGRESS})

FRONT = FRONT_LINE
TECH = FRONT_LINE | {Role.TECHNICIAN}
# Diagnosis, repair and the full check: the technicians and those above them.
TECHNICIANS = frozenset({Role.TECHNICIAN, Role.SUPERVISOR, Role.SERVICE_DIRECTOR})
MANAGERS = frozenset({Role.SUPERVISOR, Role.SERVICE_DIRECTOR})
FINANCE = frozenset({Role.FINANCE})

TICKED_BY: dict[Milestone, frozenset[Role]] = {
    M.CONTRACT_FILED: FRONT,
    M.CONTRACT_READ: FRONT,
    M.SITE_MEASURED: TECH,
    M.PREPAYMENT_RECEIVED: FINANCE,
    M.PRODUCTION_PROGRESS: FRONT,
    M.DRAWINGS_APPROVED: TECH,
    M.DELIVERY_NOTE_CHECKED: FRONT | {Role.LOGISTICS},
    M.SHIPMENT_CONFIRMED: FRONT,
    M.ON_SITE: TECH | {Role.LOGISTICS},
    M.GOODS_ACCEPTED: TECH,
    M.INSTALLATION_SUPERVISED: TECH,
    M.PROJECT_ACCEPTED: TECH,
    M.FINAL_SETTLEMENT: FINANCE,
    M.USER_DETAILS_CONFIRMED: FRONT,
    M.FEEDBACK_FORM: FRONT,
}

# The steps a milestone waits for (ticked before it, done no later than it).
PREREQUISITES: dict[Milestone, tuple[Milestone, ...]] = {
    M.SHIPMENT_CONFIRMED: (M.DELIVERY_NOTE_CHECKED,),
    M.ON_SITE: (M.SHIPMENT_CONFIRMED,),
    M.GOODS_ACCEPTED: (M.ON_SITE,),
    M.INSTALLATION_SUPERVISED: (M.DRAWINGS_APPROVED, M.GOODS_ACCEPTED),
    M.PROJECT_ACCEPTED: (M.INSTALLATION_SUPERVISED,),
    M.FINAL_SETTLEMENT: (M.PROJECT_ACCEPTED,),
}

def _label(milestone: Milestone) -> str:
    return f"'{MILESTONE_LABELS['en'][milestone]}'"


def _day_ends(day: date, promises: ShopPromises) -> datetime:
    """The moment ``day`` is over in the company's time zone (the first minute of the next
    local day), in UTC. Time zones are within 14 hours of UTC and whole minutes off it,
    so the moment is found by halving the 26 hours it can lie in, minute by minute."""
    start = datetime.combine(day, time(10), tzinfo=UTC) - timedelta(minutes=1)
    low, high = 0, 26 * 60 + 1  # minutes after start: still ``day`` at low, later at high
    while high - low > 1:
        middle = (low + high) // 2
        if promises.local_date(start + timedelta(minutes=middle)) > day:
            high = middle
        else:
            low = middle
    return start + timedelta(minutes=high)


# -- installation projects: parameters and actions ---------------------------------------


class PlanMilestoneParams(BaseModel):
    model_config = _params
    milestone: Milestone
    due_on: date


class TickMilestoneParams(BaseModel):
    model_config = _params
    milestone: Milestone
    note: str | None = Field(default=None, min_length=1, max_length=2000)
    done_on: date | None = None  # today (the company's date) when not given


class UntickMilestoneParams(BaseModel):
    model_config = _params
    milestone: Milestone
    reason: str = Text


def _project(case: Case) -> InstallationProject:
    return case.installation or InstallationProject()


def _plan(case: Case, p: PlanMilestoneParams, ctx: Context) -> Outcome:
    project = _project(case)
    record = project.record(p.milestone)
    if record.done is not None:
        raise ActionRefused(f"{_label(p.milestone)} was done on {record.done.done_on}")
    if p.due_on < ctx.promises.local_date(ctx.now):
        raise refuse("a plan is for a day to come", "due_on", "cannot be in the past")
    planned = record.model_copy(
        update={"due_on": p.due_on, "due_at": _day_ends(p.due_on, ctx.promises)}
    )
    return Outcome(updates={"installation": project.with_record(planned)})


def _tick(case: Case, p: TickMilestoneParams, ctx: Context) -> Outcome:
    allowed = TICKED_BY[p.milestone]
    if ctx.actor.role not in allowed:
        roles = ", ".join(sorted(role.value for role in allowed))
        raise ActionRefused(
            f"a {ctx.actor.role.value} may not tick {_label(p.milestone)} (allowed: {roles})",
            code="role",
        )
    project = _project(case)
    record = project.record(p.milestone)
    if record.done is not None:
        raise ActionRefused(
            f"{_label(p.milestone)} was already ticked (done on {record.done.done_on}); "
            "a supervisor unticks a mistake"
        )
    waits_for = [project.record(m) for m in PREREQUISITES.get(p.milestone, ())]
    if not_yet := [r.milestone for r in waits_for if r.done is None]:
        raise ActionRefused(
            f"{_label(p.milestone)} comes after "
            + " and ".join(_label(m) for m in not_yet)
            + ": tick that first"
        )
    today = ctx.promises.local_date(ctx.now)
    done_on = p.done_on or today
    if done_on > today:
        raise refuse("a milestone is ticked once done", "done_on", "cannot be in the future")
    for before in waits_for:
        assert before.done is not None
        if done_on < before.done.done_on:
            raise refuse(
                f"{_label(p.milestone)} cannot be done before {_label(before.milestone)} "
                f"(done on {before.done.done_on})",
                "done_on",
                f"cannot be before {before.done.done_on}",
            )
    done = MilestoneTick(done_on=done_on, by=ctx.actor.actor, at=ctx.now, note=p.note)
    ticked = record.model_copy(update={"done": done})
    return Outcome(updates={"installation": project.with_record(ticked)}, status=S.IN_PROGRESS)


def _untick(case: Case, p: UntickMilestoneParams, ctx: Context) -> Outcome:
    project = _project(case)
    record = project.record(p.milestone)
    if record.done is None:
        raise ActionRefused(f"{_label(p.milestone)} is not ticked")
    after = [
        m for m, needs in PREREQUISITES.items()
        if p.milestone in needs and project.record(m).done is not None
    ]
    if after:
        raise ActionRefused(
            " and ".join(_label(m) for m in after)
            + f" came after {_label(p.milestone)}: untick that first"
        )
    undone = record.model_copy(update={"done": None})
    return Outcome(updates={"installation": project.with_record(undone)}, status=S.IN_PROGRESS)


def _nothing_to_tick(case: Case) -> str | None:
    return None if _project(case).left else "every milestone is ticked"


def _nothing_ticked(case: Case) -> str | None:
    if len(_project(case).left) == len(Milestone):
        return "no milestone is ticked"
    return None


# -- workshop repairs: parameters and actions --------------------------------------------

Accessory = Annotated[str, Field(min_length=1, max_length=200)]
Amount = Field(ge=0, max_digits=12, decimal_places=2)


class ReceiveDeviceParams(BaseModel):
    model_config = _params
    accessories: list[Accessory] = Field(default_factory=list, max_length=50)
    visible_damage: str = Text  # "none" when there is none: it was looked at
    signed_by: str = Short  # the customer's name, typed as their signature


class QuoteRepairParams(BaseModel):
    model_config = _params
    amount: Decimal = Amount
    description: str = Text  # what is wrong and what the repair is


class OptionalNoteParams(BaseModel):
    model_config = _params
    note: str | None = Field(default=None, min_length=1, max_length=2000)


class SendToManufacturerParams(BaseModel):
    model_config = _params
    manufacturer: str = Short
    due_at: AwareDatetime
    reference: str | None = Field(default=None, min_length=1, max_length=200)


class ProgressParams(BaseModel):
    model_config = _params
    note: str = Text
    due_at: AwareDatetime | None = None  # the manufacturer's new date, if it moved


class FullCheckParams(BaseModel):
    model_config = _params
    passed: bool
    note: str = Text


class CollectedParams(BaseModel):
    model_config = _params
    signed_by: str = Short


class SettleRepairParams(BaseModel):
    model_config = _params
    amount: Decimal = Amount
    reference: str = Short


def _job(case: Case) -> WorkshopJob:
    assert case.workshop is not None  # every action but receive_device checks (missing)
    return case.workshop


def _at(*stages: WorkshopStage, doing: str) -> Callable[[Case], str | None]:
    """An action possible only while the device is at one of these stages."""

    def missing(case: Case) -> str | None:
        job = case.workshop
        if job is None:
            return f"{doing} is not possible before the device is received"
        if job.stage not in stages:
            where = job.stage.value.replace("_", " ")
            return f"{doing} is not possible now (the device is at: {where})"
        return None

    return missing


def _not_yet_received(case: Case) -> str | None:
    return None if case.workshop is None else "the device was already received"


def _stage(case: Case, stage: WorkshopStage, **changes: Any) -> dict[str, Any]:
    return {"workshop": _job(case).model_copy(update={"stage": stage, **changes})}


def _receive(case: Case, p: ReceiveDeviceParams, ctx: Context) -> Outcome:
    intake = WorkshopIntake(
        accessories=tuple(p.accessories),
        visible_damage=p.visible_damage,
        signed_by=p.signed_by,
        received_by=ctx.actor.actor,
        received_at=ctx.now,
    )
    job = WorkshopJob(stage=W.RECEIVED, intake=intake)
    return Outcome(updates={"workshop": job}, status=S.IN_PROGRESS)


def _quote(case: Case, p: QuoteRepairParams, ctx: Context) -> Outcome:
    quote = WorkshopQuote(
        amount=p.amount, description=p.description, quoted_by=ctx.actor.actor,
        quoted_at=ctx.now,
    )
    values = {"amount": f"{p.amount:.2f}", "description": p.description}
    return Outcome(
        updates=_stage(case, W.QUOTED, quote=quote),
        messages=(CustomerMessage("workshop_quote", values),),
    )


def _answer(case: Case, p: OptionalNoteParams, ctx: Context, approved: bool) -> Outcome:
    quote = _job(case).quote
    assert quote is not None
    answered = quote.model_copy(
        update={"approved": approved, "answered_at": ctx.now, "answer_note": p.note}
    )
    return Outcome(updates=_stage(case, W.APPROVED if approved else W.DECLINED, quote=answered))


def _approved(case: Case, p: OptionalNoteParams, ctx: Context) -> Outcome:
    return _answer(case, p, ctx, approved=True)


def _declined(case: Case, p: OptionalNoteParams, ctx: Context) -> Outcome:
    return _answer(case, p, ctx, approved=False)


def _repair_in_house(case: Case, p: NoteParams, ctx: Context) -> Outcome:
    return Outcome(updates=_stage(case, W.REPAIRED, repair_note=p.text))


def _send(case: Case, p: SendToManufacturerParams, ctx: Context) -> Outcome:
    if p.due_at <= ctx.now:
        raise refuse("the device is due back later", "due_at", "must be later than now")
    sent = ManufacturerRepair(
        manufacturer=p.manufacturer, reference=p.reference, sent_at=ctx.now,
        due_at=p.due_at.astimezone(UTC),
    )
    return Outcome(updates=_stage(case, W.AT_MANUFACTURER, manufacturer=sent))


def _progress(case: Case, p: ProgressParams, ctx: Context) -> Outcome:
    sent = _job(case).manufacturer
    assert sent is not None
    if p.due_at is not None and p.due_at <= ctx.now:
        raise refuse("the device is due back later", "due_at", "must be later than now")
    checked = sent.model_copy(
        update={
            "progress_checked_at": ctx.now,
            "progress_note": p.note,
            "due_at": sent.due_at if p.due_at is None else p.due_at.astimezone(UTC),
        }
    )
    return Outcome(updates=_stage(case, W.AT_MANUFACTURER, manufacturer=checked))


def _back(case: Case, p: OptionalNoteParams, ctx: Context) -> Outcome:
    sent = _job(case).manufacturer
    assert sent is not None
    back = sent.model_copy(update={"received_at": ctx.now, "return_note": p.note})
    return Outcome(updates=_stage(case, W.REPAIRED, manufacturer=back))


def _full_check(case: Case, p: FullCheckParams, ctx: Context) -> Outcome:
    check = FullCheck(passed=p.passed, note=p.note, by=ctx.actor.actor, at=ctx.now)
    checks = (*_job(case).checks, check)
    # Failed: the device goes back to repair (in house or to the manufacturer again).
    return Outcome(updates=_stage(case, W.CHECKED if p.passed else W.APPROVED, checks=checks))


def _ready(case: Case, p: NoParams, ctx: Context) -> Outcome:
    job = _job(case)
    if job.stage is W.DECLINED:
        message = CustomerMessage("workshop_return_unrepaired")
    else:
        assert job.quote is not None
        message = CustomerMessage(
            "workshop_ready_for_pickup", {"amount": f"{job.quote.amount:.2f}"}
        )
    return Outcome(updates=_stage(case, W.READY, ready_at=ctx.now), messages=(message,))


def _collected(case: Case, p: CollectedParams, ctx: Context) -> Outcome:
    return Outcome(
        updates=_stage(case, W.COLLECTED, collected_by=p.signed_by, collected_at=ctx.now)
    )


def _settle(case: Case, p: SettleRepairParams, ctx: Context) -> Outcome:
    settlement = WorkshopSettlement(
        amount=p.amount, reference=p.reference, by=ctx.actor.actor, at=ctx.now
    )
    job = _job(case)
    return Outcome(updates={"workshop": job.model_copy(update={"settlement": settlement})})


def _settleable(case: Case) -> str | None:
    job = case.workshop
    if job is not None and job.settlement is not None:
        return "the repair was already settled"
    return _at(W.READY, W.COLLECTED, doing="settling the repair")(case)


# -- the actions -------------------------------------------------------------------------


def _installation(
    name: str, roles: frozenset[Role], params: type[BaseModel], effect: Any,
    missing: Callable[[Case], str | None],
) -> Action:
    return Action(name, roles, WORKING, INSTALLATION, params, effect, missing=missing)


def _workshop(
    name: str, roles: frozenset[Role], params: type[BaseModel], effect: Any,
    missing: Callable[[Case], str | None], customer_visible: bool = False,
) -> Action:
    return Action(name, roles, WORKING, WORKSHOP, params, effect, customer_visible,
                  missing=missing)


PROJECT_ACTIONS: tuple[Action, ...] = (
    _installation("plan_milestone", FRONT, PlanMilestoneParams, _plan, _nothing_to_tick),
    _installation("tick_milestone", frozenset().union(*TICKED_BY.values()),
                  TickMilestoneParams, _tick, _nothing_to_tick),
    _installation("untick_milestone", MANAGERS, UntickMilestoneParams, _untick,
                  _nothing_ticked),
    _workshop("receive_device", TECH, ReceiveDeviceParams, _receive, _not_yet_received),
    _workshop("quote_repair", TECHNICIANS, QuoteRepairParams, _quote,
              _at(W.RECEIVED, W.QUOTED, doing="quoting"), customer_visible=True),
    _workshop("quote_approved", TECH, OptionalNoteParams, _approved,
              _at(W.QUOTED, doing="recording the customer's answer")),
    _workshop("quote_declined", TECH, OptionalNoteParams, _declined,
              _at(W.QUOTED, doing="recording the customer's answer")),
    _workshop("repair_in_house", TECHNICIANS, NoteParams, _repair_in_house,
              _at(W.APPROVED, doing="repairing")),
    _workshop("send_to_manufacturer", TECH | {Role.LOGISTICS}, SendToManufacturerParams,
              _send, _at(W.APPROVED, doing="sending the device to the manufacturer")),
    _workshop("check_manufacturer_progress", TECH | {Role.LOGISTICS}, ProgressParams,
              _progress, _at(W.AT_MANUFACTURER, doing="checking the manufacturer's progress")),
    _workshop("back_from_manufacturer", TECH | {Role.LOGISTICS}, OptionalNoteParams, _back,
              _at(W.AT_MANUFACTURER, doing="receiving the device back")),
    _workshop("full_check", TECHNICIANS, FullCheckParams, _full_check,
              _at(W.REPAIRED, doing="the full check")),
    _workshop("ready_for_pickup", TECH, NoParams, _ready,
              _at(W.CHECKED, W.DECLINED, doing="calling the customer to collect"),
              customer_visible=True),
    _workshop("device_collected", TECH, CollectedParams, _collected,
              _at(W.READY, doing="handing the device back")),
    _workshop("settle_repair", FRONT | FINANCE, SettleRepairParams, _settle, _settleable),
)


def project_work_left(case: Case) -> list[str]:
    """What still stands between a project case and 'resolved'."""
    if case.kind is CaseKind.INSTALLATION_PROJECT:
        return [f"the milestone {m.value}" for m in _project(case).left]
    if case.kind is not CaseKind.WORKSHOP_REPAIR:
        return []
    job = case.workshop
    if job is None:
        return ["receiving the device"]
    left = []
    if job.stage is not W.COLLECTED:
        left.append(f"the device (at: {job.stage.value.replace('_', ' ')})")
    quote = job.quote
    if quote is not None and quote.approved and quote.amount and job.settlement is None:
        left.append("the settlement")
    return left
