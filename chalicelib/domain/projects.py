"""The project kinds of case: installation projects (安装项目, the 15 milestones) and
workshop repairs (送修, a device repaired in the shop).

Pure data: the actions that change them are in project_actions.py.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

_frozen = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class InstallationProject(BaseModel):
    model_config = _frozen


class WorkshopJob(BaseModel):
    model_config = _frozen
