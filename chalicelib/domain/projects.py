"""The project kinds of case: installation projects (安装项目, the 15 milestones) and
workshop repairs (送修, a device repaired in the shop).

An installation project [002] is a fixed checklist: each milestone may get a planned date
and is ticked when done (the day it was done, who ticked it, a note). A workshop repair
[004] follows the device: received with its accessories and visible damage (机器接收单,
signed by the customer), diagnosed and quoted, the quote approved or declined, repaired in
house or at the manufacturer (返厂), fully checked (机器检测), ready for pickup, collected and
settled (结算).

The records and the deadlines they hold (`project_timers`, part of timers.timers_for);
the actions that change them are in project_actions.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:  # both import this module
    from chalicelib.domain.case import Case
    from chalicelib.domain.timers import TimerKind

_frozen = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# -- installation projects (安装项目) -----------------------------------------------------


class Milestone(StrEnum):
    """The milestones of an installation project, in the order the seed [002] lists them."""

    CONTRACT_FILED = "contract_filed"  # 整理项目资料: contract copy and hand-over sheet filed
    CONTRACT_READ = "contract_read"  # 了解合同内容
    SITE_MEASURED = "site_measured"  # 安排现场测量、复核
    PREPAYMENT_RECEIVED = "prepayment_received"  # 跟进预付款到帐情况 (finance confirms)
    PRODUCTION_PROGRESS = "production_progress"  # 跟进项目生产进度
    DRAWINGS_APPROVED = "drawings_approved"  # 审核安装图纸
    DELIVERY_NOTE_CHECKED = "delivery_note_checked"  # 审核厂部送货单
    SHIPMENT_CONFIRMED = "shipment_confirmed"  # 与客户确认出货
    ON_SITE = "on_site"  # 通知出货并安排安装队前往工地
    GOODS_ACCEPTED = "goods_accepted"  # 与客户验收货物
    INSTALLATION_SUPERVISED = "installation_supervised"  # 进行安装监督
    PROJECT_ACCEPTED = "project_accepted"  # 与客户进行工程验收
    FINAL_SETTLEMENT = "final_settlement"  # 与客户进行最终结算、收款 (finance confirms)
    USER_DETAILS_CONFIRMED = "user_details_confirmed"  # 与客户确认用户信息 (for later visits)
    FEEDBACK_FORM = "feedback_form"  # 让客户填写反馈信息 (项目反馈函)


# What staff call each milestone, by language code (case.Language; case.py imports this
# module, so the codes are plain text here).
MILESTONE_LABELS: dict[str, dict[Milestone, str]] = {
    "zh": {
        Milestone.CONTRACT_FILED: "整理项目资料（合同、项目移交表）",
        Milestone.CONTRACT_READ: "了解合同内容",
        Milestone.SITE_MEASURED: "现场测量、复核",
        Milestone.PREPAYMENT_RECEIVED: "预付款到帐",
        Milestone.PRODUCTION_PROGRESS: "跟进项目生产进度",
        Milestone.DRAWINGS_APPROVED: "审核安装图纸",
        Milestone.DELIVERY_NOTE_CHECKED: "审核厂部送货单",
        Milestone.SHIPMENT_CONFIRMED: "与客户确认出货",
        Milestone.ON_SITE: "货物和安装队到达工地",
        Milestone.GOODS_ACCEPTED: "与客户验收货物",
        Milestone.INSTALLATION_SUPERVISED: "安装监督",
        Milestone.PROJECT_ACCEPTED: "工程验收",
        Milestone.FINAL_SETTLEMENT: "最终结算、收款",
        Milestone.USER_DETAILS_CONFIRMED: "与客户确认用户信息",
        Milestone.FEEDBACK_FORM: "客户填写反馈信息",
    },
    "en": {
        Milestone.CONTRACT_FILED: "contract and hand-over sheet filed",
        Milestone.CONTRACT_READ: "contract read",
        Milestone.SITE_MEASURED: "site measured and checked",
        Milestone.PREPAYMENT_RECEIVED: "prepayment received",
        Milestone.PRODUCTION_PROGRESS: "production progress followed",
        Milestone.DRAWINGS_APPROVED: "installation drawings approved",
        Milestone.DELIVERY_NOTE_CHECKED: "factory delivery note checked",
        Milestone.SHIPMENT_CONFIRMED: "shipment confirmed with the customer",
        Milestone.ON_SITE: "goods and installers on site",
        Milestone.GOODS_ACCEPTED: "goods accepted with the customer",
        Milestone.INSTALLATION_SUPERVISED: "installation supervised",
        Milestone.PROJECT_ACCEPTED: "project accepted",
        Milestone.FINAL_SETTLEMENT: "final settlement and payment",
        Milestone.USER_DETAILS_CONFIRMED: "user details confirmed for later visits",
        Milestone.FEEDBACK_FORM: "customer feedback form filled in",
    },
}


class MilestoneTick(BaseModel):
    """A milestone done: the day it was done, and who recorded it when."""

    model_config = _frozen
    done_on: date
    by: str
    at: datetime
    note: str | None = None


class MilestoneRecord(BaseModel):
    """One line of the checklist: its planned date (and when that day ends, the timer's
    moment) and its tick."""

    model_config = _frozen
    milestone: Milestone
    due_on: date | None = None
    due_at: datetime | None = None
    done: MilestoneTick | None = None


def _checklist() -> tuple[MilestoneRecord, ...]:
    return tuple(MilestoneRecord(milestone=m) for m in Milestone)


class InstallationProject(BaseModel):
    """The checklist: every milestone once, in its order."""

    model_config = _frozen
    milestones: tuple[MilestoneRecord, ...] = Field(default_factory=_checklist)

    @field_validator("milestones")
    @classmethod
    def _whole_checklist(cls, value: tuple[MilestoneRecord, ...]) -> tuple[MilestoneRecord, ...]:
        if tuple(r.milestone for r in value) != tuple(Milestone):
            raise ValueError("the checklist holds every milestone once, in order")
        return value

    def record(self, milestone: Milestone) -> MilestoneRecord:
        return self.milestones[list(Milestone).index(milestone)]

    def with_record(self, record: MilestoneRecord) -> InstallationProject:
        lines = tuple(record if r.milestone is record.milestone else r for r in self.milestones)
        return self.model_copy(update={"milestones": lines})

    @property
    def left(self) -> tuple[Milestone, ...]:
        """The milestones not ticked yet, in order."""
        return tuple(r.milestone for r in self.milestones if r.done is None)


# -- workshop repairs (送修) --------------------------------------------------------------


class WorkshopStage(StrEnum):
    """Where the device is. The way through: received → quoted → approved → (at the
    manufacturer →) repaired → checked → ready → collected; a failed check goes back to
    approved (repair again); a declined quote goes quoted → declined → ready → collected."""

    RECEIVED = "received"  # taken in, the intake form signed: to diagnose and quote
    QUOTED = "quoted"  # waiting for the customer's answer to the quote
    APPROVED = "approved"  # quote approved: to repair (in house or at the manufacturer)
    AT_MANUFACTURER = "at_manufacturer"  # 返厂: sent to the manufacturer's repair station
    REPAIRED = "repaired"  # repaired: to check in full
    CHECKED = "checked"  # passed the full check: to call the customer
    DECLINED = "declined"  # quote declined: to return unrepaired
    READY = "ready"  # the customer was told to collect it
    COLLECTED = "collected"  # handed back, signed for


class WorkshopIntake(BaseModel):
    """机器接收单: what came in with the device and how it looked, signed by the customer."""

    model_config = _frozen
    accessories: tuple[str, ...]
    visible_damage: str
    signed_by: str  # the customer's name, typed as their signature
    received_by: str
    received_at: datetime


class WorkshopQuote(BaseModel):
    model_config = _frozen
    amount: Decimal
    description: str
    quoted_by: str
    quoted_at: datetime
    approved: bool | None = None  # None: the customer has not answered yet
    answered_at: datetime | None = None
    answer_note: str | None = None


class ManufacturerRepair(BaseModel):
    """The device at the manufacturer's repair station: due back at ``due_at``; staff ask
    how it is going 12 hours before (the manufacturer_return timer)."""

    model_config = _frozen
    manufacturer: str
    reference: str | None = None
    sent_at: datetime
    due_at: datetime
    progress_checked_at: datetime | None = None
    progress_note: str | None = None
    received_at: datetime | None = None
    return_note: str | None = None  # what the manufacturer did


class FullCheck(BaseModel):
    """机器检测: the full check after a repair, passed or not."""

    model_config = _frozen
    passed: bool
    note: str
    by: str
    at: datetime


class WorkshopSettlement(BaseModel):
    model_config = _frozen
    amount: Decimal
    reference: str
    by: str
    at: datetime


class WorkshopJob(BaseModel):
    model_config = _frozen
    stage: WorkshopStage
    intake: WorkshopIntake
    quote: WorkshopQuote | None = None
    repair_note: str | None = None  # what was done in house
    manufacturer: ManufacturerRepair | None = None  # the latest time it was sent out
    checks: tuple[FullCheck, ...] = ()
    ready_at: datetime | None = None
    collected_by: str | None = None  # who signed for the device
    collected_at: datetime | None = None
    settlement: WorkshopSettlement | None = None


# -- deadlines ------------------------------------------------------------------------------

# The device due back from the manufacturer: staff ask how it is going this long before
# (维修预计时间结束的前12小时 [004]).
MANUFACTURER_CHECK_BEFORE = timedelta(hours=12)


def project_timers(case: Case) -> list[tuple[TimerKind, str, datetime]]:
    """The deadlines a project case holds while open, as (kind, timer name, due): each
    planned milestone not ticked when its day ends (one timer per milestone), and the
    check on a device at the manufacturer 12 hours before it is due back (until a check is
    made within those 12 hours, or the device is back)."""
    from chalicelib.domain.timers import TimerKind

    timers: list[tuple[TimerKind, str, datetime]] = []
    if case.installation is not None:
        timers += [
            (TimerKind.MILESTONE, f"{TimerKind.MILESTONE.value}_{r.milestone.value}", r.due_at)
            for r in case.installation.milestones
            if r.due_at is not None and r.done is None
        ]
    sent = case.workshop.manufacturer if case.workshop else None
    if sent is not None and sent.received_at is None:
        check_at = sent.due_at - MANUFACTURER_CHECK_BEFORE
        if sent.progress_checked_at is None or sent.progress_checked_at < check_at:
            timers.append((TimerKind.MANUFACTURER_RETURN,
                           TimerKind.MANUFACTURER_RETURN.value, check_at))
    return timers
