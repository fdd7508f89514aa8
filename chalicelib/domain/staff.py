"""The people who work on cases, and what their role lets them do."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    AGENT = "agent"  # 客服
    TECHNICIAN = "technician"  # 技术员
    FINANCE = "finance"  # 财务
    OPERATIONS = "operations"  # 运营
    PURCHASING = "purchasing"  # 采购
    LOGISTICS = "logistics"  # 物流
    SUPERVISOR = "supervisor"  # 主管
    SERVICE_DIRECTOR = "service_director"  # 售服中心主任
    QA_MANAGER = "qa_manager"  # 品管部经理
    SERVICE_VP = "service_vp"  # 服务副总
    SUPPLY_VP = "supply_vp"  # 供应副总
    SALES_VP = "sales_vp"  # 销售副总
    RND = "rnd"  # 研发部: receives abnormal-problem reports


# Who answers customers and moves a case along (the front line and those above it).
FRONT_LINE = frozenset({Role.AGENT, Role.SUPERVISOR, Role.SERVICE_DIRECTOR})

# Approvals climb this ladder: a role may approve what any role below it may.
APPROVAL_LADDER = (Role.SUPERVISOR, Role.SERVICE_DIRECTOR, Role.SERVICE_VP)


def may_approve(actor: Role, required: Role) -> bool:
    if actor == required:
        return True
    if actor in APPROVAL_LADDER and required in APPROVAL_LADDER:
        return APPROVAL_LADDER.index(actor) >= APPROVAL_LADDER.index(required)
    return False


class StaffMember(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    staff_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    email: str | None = None
    active: bool = True
    # The language of what the system writes to this person (the sheet's notes); unset:
    # the company's default language.
    language: Literal["zh", "en"] | None = None

    @property
    def actor(self) -> str:
        """How events name this person."""
        return f"staff:{self.staff_id}"
