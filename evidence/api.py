"""REST endpoints for CI test results: POST a run's JUnit XML, read an upload's state.

`POST /api/v1/teams/{slug}/test-results` takes either multipart/form-data (the fields and one
or more `file` parts) or the XML itself as the body (application/xml, text/xml or
application/gzip) with the fields as query parameters. Gzip is recognised by its magic bytes
in both. The body is bounded by UPLOAD_MAX_BYTES, checked on Content-Length before anything
is read, so the answer is this endpoint's JSON 413 and not Django's own limit.

The files are checked in the request (`junit.check`: a malformed file is refused with its
name, line and reason, and nothing is kept), stored gzipped and processed by the
`evidence.process_upload` task after the request answers (202). The same run uploaded twice
answers 200 with the existing upload and `duplicate: true`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import Field, ValidationError

from config.api_schemas import ErrorOut
from escapes.models import PipelineStage
from escapes.selectors import stages_of_team
from evidence import junit
from evidence.models import UPLOAD_MAX_BYTES, ResultUpload
from evidence.services import RunMeta, files_check, upload_receive
from teams.api import ApiInput, api_user, membership_for
from teams.models import Team

router = Router(tags=["test results"])

RAW_TYPES = ("application/xml", "text/xml", "application/gzip", "application/x-gzip")
MULTIPART = "multipart/form-data"
RAW_NAME = "request body"


class RunIn(ApiInput):
    """The run's fields: form fields of a multipart upload, else query parameters."""

    stage: str = Field(min_length=1, max_length=50, description="A stage name of the team")
    commit: str = Field(min_length=1, max_length=64, description="The commit the run tested")
    branch: str = Field("", max_length=200)
    run_url: str = Field("", max_length=500, description="The pipeline run's URL")
    release: str = Field(
        "", max_length=64, description="The release version the run built, if known"
    )
    component: str = Field("", max_length=100, description="The component the run tested")


class UploadOut(Schema):
    id: int
    status: str = Field(description="queued, done (processed) or failed (refused by the worker)")
    duplicate: bool = Field(description="true when this run was uploaded before: counted once")
    url: str = Field(description="This upload's status endpoint")
    stage: str
    commit: str
    branch: str
    run_url: str
    release: str
    component: str
    cases: int = Field(description="<testcase> elements in the files")
    passed: int = Field(description="Tests whose run passed (counted once processed)")
    failed: int
    skipped: int
    error: str = Field(description="Why the worker refused the upload (status failed)")
    ran_at: datetime
    received_at: datetime
    processed_at: datetime | None


_FIELD_DOCS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": f"{text} (with a raw XML body; in a multipart upload, a form field)",
    }
    for name, text in (
        ("stage", "A stage name of the team (required)"),
        ("commit", "The commit the run tested (required)"),
        ("branch", "The branch"),
        ("run_url", "The pipeline run's URL"),
        ("release", "The release version the run built"),
        ("component", "The component the run tested"),
    )
]
_FORM_SCHEMA = {
    "type": "object",
    "required": ["stage", "commit", "file"],
    "properties": {
        **{p["name"]: {"type": "string"} for p in _FIELD_DOCS},
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "One or more JUnit XML files, gzip accepted",
        },
    },
}
_RAW_SCHEMA = {"type": "string", "format": "binary"}
UPLOAD_OPENAPI: dict[str, Any] = {
    "parameters": _FIELD_DOCS,
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {"schema": _FORM_SCHEMA},
            **{kind: {"schema": _RAW_SCHEMA} for kind in RAW_TYPES},
        },
    },
}


def _invalid(loc: list[str | int], message: str, kind: str = "invalid") -> NinjaValidationError:
    return NinjaValidationError([{"type": kind, "loc": loc, "msg": message}])


def _too_large(message: str) -> Status[dict[str, str]]:
    return Status(413, {"detail": message})


def _size(count: int) -> str:
    mb = 1024 * 1024
    if count % mb == 0:
        return f"{count // mb} MB"
    return f"{count / mb:.1f} MB" if count >= mb else f"{count:,} bytes"


def _content_type(request: HttpRequest) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _run_in(data: dict[str, str], where: str) -> RunIn:
    try:
        return RunIn.model_validate(data)
    except ValidationError as exc:
        raise NinjaValidationError(
            [
                {"type": e["type"], "loc": [where, *e["loc"]], "msg": e["msg"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
        ) from None


def _stage(team: Team, name: str, where: str) -> PipelineStage:
    stages = list(stages_of_team(team.pk))
    found = next((s for s in stages if s.name == name), None) or next(
        (s for s in stages if s.name.casefold() == name.casefold()), None
    )
    if found is None:
        names = ", ".join(s.name for s in stages) or "none"
        raise _invalid(
            [where, "stage"], f"No stage named “{name}” in this team; its stages are: {names}."
        )
    return found


def _upload_out(upload: ResultUpload, *, duplicate: bool) -> dict[str, Any]:
    return {
        "id": upload.pk,
        "status": upload.status,
        "duplicate": duplicate,
        "url": f"/api/v1/teams/{upload.team.slug}/test-results/{upload.pk}",
        "stage": upload.stage.name,
        "commit": upload.commit,
        "branch": upload.branch,
        "run_url": upload.run_url,
        "release": upload.release_version,
        "component": upload.component,
        "cases": upload.cases,
        "passed": upload.passed,
        "failed": upload.failed,
        "skipped": upload.skipped,
        "error": upload.error,
        "ran_at": upload.ran_at,
        "received_at": upload.received_at,
        "processed_at": upload.processed_at,
    }


@router.post(
    "/{slug}/test-results",
    response={200: UploadOut, 202: UploadOut, 413: ErrorOut},
    summary="Upload a pipeline run's JUnit XML for one stage (202; 200 if sent before)",
    description=(
        "multipart/form-data with the fields and one or more `file` parts, or the XML itself "
        "as the body (application/xml, text/xml, application/gzip) with the fields as query "
        f"parameters. Gzip is accepted. At most {UPLOAD_MAX_BYTES // (1024 * 1024)} MB per "
        "request. A malformed file is refused (422, with its name, line and reason) and "
        "nothing of the upload is kept. The same run (stage, commit, run_url and files) sent "
        "again answers 200 with the existing upload and `duplicate: true`."
    ),
    openapi_extra=UPLOAD_OPENAPI,
)
def test_results_upload(request: HttpRequest, slug: str) -> Status[dict[str, Any]]:
    team = membership_for(request, slug, write=True).team
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > UPLOAD_MAX_BYTES:
        return _too_large(
            f"The upload is {_size(length)}; the limit is {_size(UPLOAD_MAX_BYTES)} per "
            "request. Gzip the files or send them in several uploads."
        )
    kind = _content_type(request)
    if kind == MULTIPART:
        try:
            form = {key: request.POST.get(key, "") for key in request.POST}
            parts = request.FILES.getlist("file")
        except TooManyFilesSent:
            most = settings.DATA_UPLOAD_MAX_NUMBER_FILES
            return _too_large(f"More than {most} files in one upload; send fewer at once.")
        except TooManyFieldsSent:
            return _too_large("Too many form fields; send the upload's fields and files only.")
        except RequestDataTooBig:
            return _too_large("The upload's form fields are too large; send only the fields.")
        except MultiPartParserError as exc:
            raise _invalid(
                ["body"], f"The multipart/form-data body cannot be read: {exc}."
            ) from None
        where = "form"
        meta = _run_in(form, where)
        if not parts:
            raise _invalid(
                ["form", "file"], "Send one or more JUnit XML files as `file` parts.", "missing"
            )
        files = [(part.name or f"file {i + 1}", part.read()) for i, part in enumerate(parts)]
    elif kind in RAW_TYPES:
        where = "query"
        meta = _run_in({key: request.GET.get(key, "") for key in request.GET}, where)
        body = request.read(UPLOAD_MAX_BYTES + 1)
        if len(body) > UPLOAD_MAX_BYTES:
            return _too_large(
                f"The upload is over the limit of {_size(UPLOAD_MAX_BYTES)} per request."
            )
        if not body:
            raise _invalid(["body"], "The body is empty: send the JUnit XML.", "missing")
        files = [(RAW_NAME, body)]
    else:
        raise _invalid(
            ["body"],
            f"Send {MULTIPART} with `file` parts, or the XML itself as "
            f"{', '.join(RAW_TYPES[:3])}; got {kind or 'no Content-Type'}.",
        )
    stage = _stage(team, meta.stage, where)
    try:
        checked = files_check(files)
    except junit.TooLarge as exc:
        return _too_large(str(exc))
    except junit.JUnitError as exc:
        raise _invalid([where if where == "form" else "body", "file"], str(exc)) from None
    upload, created = upload_receive(
        team=team,
        stage=stage,
        meta=RunMeta(
            commit=meta.commit,
            branch=meta.branch,
            run_url=meta.run_url,
            release_version=meta.release,
            component=meta.component,
        ),
        files=checked,
        by=api_user(request),
    )
    return Status(202 if created else 200, _upload_out(upload, duplicate=not created))


@router.get(
    "/{slug}/test-results/{int:upload_id}",
    response=UploadOut,
    summary="An upload's state: queued, done (with its counts) or failed (with the reason)",
)
def test_results_status(request: HttpRequest, slug: str, upload_id: int) -> dict[str, Any]:
    team = membership_for(request, slug).team
    upload = get_object_or_404(
        ResultUpload.objects.select_related("team", "stage"), team=team, pk=upload_id
    )
    return _upload_out(upload, duplicate=False)
