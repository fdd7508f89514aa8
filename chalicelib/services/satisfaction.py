"""The customer's rating of the service, through the link in the follow-up e-mail.

Opening the link (GET) records nothing: mail scanners follow links. Only the form's POST
records a rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.domain.case import Case
from chalicelib.domain.lifecycle import rate_service
from chalicelib.services.customer_change import save_customer_change
from chalicelib.services.ports import CaseStore


class RatingForm(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class BadRating(Exception):
    errors: dict[str, str]


def parse_rating(values: dict[str, str]) -> RatingForm:
    try:
        return RatingForm.model_validate(
            {"rating": values.get("rating") or None, "comment": values.get("comment") or None}
        )
    except ValidationError as invalid:
        errors = {}
        for error in invalid.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "body"
            errors[field] = (
                "choose 1 to 5" if field == "rating" else error["msg"].removeprefix("Value error, ")
            )
        raise BadRating(errors) from None


def record_rating(store: CaseStore, case: Case, form: RatingForm, now: datetime) -> Case:
    """Record the rating on the case; a staff change at the same moment is not a reason
    to lose it (the rating is applied again to the case as it is now)."""
    return save_customer_change(
        store, case, lambda current: rate_service(current, form.rating, form.comment, now)
    )
