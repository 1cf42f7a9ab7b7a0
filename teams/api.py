"""The teams router of the REST API, and what every team-scoped endpoint shares.

Scoping is the same as in the web pages: a team the token's user does not belong to answers
404 exactly like one that does not exist, and a viewer may read but not write (403).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import AfterValidator, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from teams.models import Membership
from teams.selectors import get_membership, get_rw_membership

router = Router(tags=["teams"])

Loc = Sequence[str | int]
MAX_LIMIT = 200


def _require_offset(value: datetime) -> datetime:
    # A naive time is ambiguous (whose midnight?); refuse it rather than guess UTC.
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "naive_datetime", "Include a UTC offset, e.g. 2026-05-01T09:30:00Z or +02:00."
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 has no UTC equivalent
        raise PydanticCustomError("datetime_range", "This time is out of range.") from None


AwareDatetime = Annotated[datetime, AfterValidator(_require_offset)]


class ApiInput(Schema):
    """Base of request bodies and queries: NUL characters (and unknown body fields) are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store (or even compare with) a NUL character: refuse it up front.
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", "NUL characters are not allowed.")
        if isinstance(value, dict) and any("\x00" in str(k) for k in value):
            raise PydanticCustomError("nul_character", "NUL characters are not allowed.")
        return value


class PageQuery(ApiInput):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    # Bounded so that no offset overflows a database integer.
    offset: int = Field(0, ge=0, le=2**31 - 1)


def membership_for(request: HttpRequest, slug: str, *, write: bool = False) -> Membership:
    """The token user's membership of the team: 404 for outsiders, 403 for viewers on writes."""
    if not slug_re.fullmatch(slug):  # e.g. a NUL byte, which PostgreSQL cannot even compare
        raise Http404("No such team")
    if write:
        return get_rw_membership(request.user, slug)
    return get_membership(request.user, slug)


def api_user(request: HttpRequest) -> User:
    """The token's owner, whom ApiTokenAuth made the request's user."""
    user = request.user
    assert isinstance(user, User), "the API only runs behind ApiTokenAuth"
    return user


def error_items(exc: DjangoValidationError, loc: Loc = ("body",)) -> list[dict[str, Any]]:
    """A service's field-keyed ValidationError in the shape of ninja's own 422 details."""
    if not hasattr(exc, "error_dict"):
        return [{"type": "invalid", "loc": list(loc), "msg": m} for m in exc.messages]
    return [
        {
            "type": "invalid",
            "loc": list(loc) if field == NON_FIELD_ERRORS else [*loc, field],
            "msg": message,
        }
        for field, messages in exc.message_dict.items()
        for message in messages
    ]


def unprocessable(exc: DjangoValidationError, loc: Loc = ("body",)) -> NinjaValidationError:
    return NinjaValidationError(error_items(exc, loc))


class StageOut(Schema):
    name: str
    position: int


class TeamOut(Schema):
    slug: str
    name: str
    timezone: str
    role: str


class TeamDetailOut(TeamOut):
    stages: list[StageOut]


def _team_out(membership: Membership) -> dict[str, Any]:
    team = membership.team
    return {
        "slug": team.slug,
        "name": team.name,
        "timezone": team.timezone,
        "role": membership.role,
    }


@router.get("", response=list[TeamOut], summary="The teams you are a member of, with your role")
def team_list(request: HttpRequest) -> list[dict[str, Any]]:
    memberships = (
        Membership.objects.filter(user=api_user(request))
        .select_related("team")
        .order_by("team__name", "team__slug")
    )
    return [_team_out(m) for m in memberships]


@router.get("/{slug}", response=TeamDetailOut, summary="A team with its ordered pipeline stages")
def team_detail(request: HttpRequest, slug: str) -> dict[str, Any]:
    membership = membership_for(request, slug)
    stages = membership.team.stages.order_by("position", "id")
    return {**_team_out(membership), "stages": list(stages)}
