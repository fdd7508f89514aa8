"""What the shop does to put a problem right, and the tracks that follow a decision:
a refund (退款), a reshipment (补发/重发), a return (退货), a local repair fee (维修费),
and feedback to the department that caused the problem."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Remedy(StrEnum):
    REFUND_DIFFERENCE = "refund_difference"  # 退差价
    PARTIAL_REFUND = "partial_refund"
    FULL_REFUND = "full_refund"
    RESHIP = "reship"
    RESHIP_MISSING_PART = "reship_missing_part"
    EXCHANGE = "exchange"
    COUPON = "coupon"
    GIFT = "gift"
    KEEP_WRONG_ITEM = "keep_wrong_item"
    RETURN_ITEM = "return_item"


REFUND_REMEDIES = frozenset({Remedy.REFUND_DIFFERENCE, Remedy.PARTIAL_REFUND, Remedy.FULL_REFUND})
SHIPPING_REMEDIES = frozenset({Remedy.RESHIP, Remedy.RESHIP_MISSING_PART, Remedy.EXCHANGE})
# What goes in the parcel with a reshipment when it was promised.
EXTRAS = frozenset({Remedy.COUPON, Remedy.GIFT})


class Department(StrEnum):
    PURCHASING = "purchasing"  # 采购
    OPERATIONS = "operations"  # 运营
    LOGISTICS = "logistics"  # 物流
    QA = "qa"  # 品管部
    RND = "rnd"  # 研发部
    WAREHOUSE = "warehouse"  # 物料管理部


class PaymentMethod(StrEnum):
    PAYPAL = "paypal"
    CREDIT_CARD = "credit_card"
    BANK_TRANSFER = "bank_transfer"


_frozen = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ResolutionItem(BaseModel):
    model_config = _frozen

    remedy: Remedy
    amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    note: str | None = Field(default=None, max_length=1000)


class PendingResolution(BaseModel):
    """A decision waiting for the approval its amount needs."""

    model_config = _frozen

    items: tuple[ResolutionItem, ...]
    decided_by: str
    needs: str  # the role whose approval it waits for


class RefundTrack(BaseModel):
    model_config = _frozen

    state: Literal["to_request", "requested", "posted", "customer_told"] = "to_request"
    amount: Decimal
    request_due_at: datetime
    post_due_at: datetime | None = None  # set when the request goes to finance
    method: PaymentMethod | None = None
    reference: str | None = None
    posted_at: datetime | None = None


class ReshipTrack(BaseModel):
    model_config = _frozen

    state: Literal["to_ship", "shipped"] = "to_ship"
    due_at: datetime
    extras: tuple[Remedy, ...] = ()  # promised gift / coupon to put in the parcel
    carrier: str | None = None
    tracking_no: str | None = None
    shipped_at: datetime | None = None


class ReturnTrack(BaseModel):
    model_config = _frozen

    state: Literal["awaiting_tracking", "in_transit", "received", "inspected", "back_in_stock"] = (
        "awaiting_tracking"
    )
    tracking_no: str | None = None
    signed_by: str | None = None
    inspection_ok: bool | None = None
    inspection_note: str | None = None


class RepairFee(BaseModel):
    model_config = _frozen

    state: Literal["requested", "paid"] = "requested"
    amount: Decimal
    repairer: str
    reference: str | None = None


class DepartmentFeedback(BaseModel):
    model_config = _frozen

    number: int
    department: Department
    root_cause: str
    given_by: str
    at: datetime
    listing_corrected_at: datetime | None = None
