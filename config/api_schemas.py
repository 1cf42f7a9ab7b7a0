"""The API's error answers, shared by config/api.py (which documents them on every operation)
and the routers that declare a refusal of their own (409)."""

from ninja import Schema
from pydantic import ConfigDict


class ErrorOut(Schema):
    """Every refusal but an invalid input: 401, 403, 404, 405, 409, 413, 500."""

    detail: str


class ValidationItem(Schema):
    model_config = ConfigDict(extra="allow")  # ninja adds `ctx`, `url`, `input` at times

    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorOut(Schema):
    """422: each invalid input, where it is (`loc`) and what is wrong with it (`msg`)."""

    detail: list[ValidationItem]
