"""Writes of the evidence app: receiving a pipeline run's JUnit XML (the upload API's service).

The request checks every file (`junit.check`: well-formed, JUnit's root, each case named,
the bounds) and stores it gzipped; the worker (evidence/processing.py) reads it later. A file
is parsed once here: `check` walks the tree it parses, and the stored copy is the bytes as
sent when they were gzip already, else the XML compressed at a quick level.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery import registered_task
from escapes.models import PipelineStage
from evidence import junit
from evidence.models import (
    UNZIPPED_MAX_BYTES,
    UPLOAD_MAX_CASES,
    ResultFile,
    ResultUpload,
    UploadStatus,
)
from teams.models import Team

log = logging.getLogger(__name__)

PROCESS_TASK = "evidence.process_upload"


@dataclass(frozen=True)
class RunMeta:
    """What CI says about the run, besides its files."""

    commit: str
    branch: str = ""
    run_url: str = ""
    release_version: str = ""
    component: str = ""


@dataclass(frozen=True)
class CheckedFile:
    name: str
    stored: bytes  # gzip-compressed XML, as kept in ResultFile
    sha256: str  # of the XML (unzipped): the same file sent plain or gzipped is the same file
    unzipped_bytes: int
    cases: int
    ran_at: datetime | None


def file_check(data: bytes, *, name: str, unzipped_budget: int) -> CheckedFile:
    """One file, checked: JUnitError (with the file's name and the line) or TooLarge."""
    was_gzip = data.startswith(junit.GZIP_MAGIC)
    try:
        xml = junit.unpack(data, limit=unzipped_budget, name=name)
    except junit.TooLarge:
        limit_mb = UNZIPPED_MAX_BYTES // (1024 * 1024)
        raise junit.TooLarge(
            f"The upload is over {limit_mb} MB of XML once unzipped ({name} went past it)."
        ) from None
    checked = junit.check(xml, name=name, max_cases=UPLOAD_MAX_CASES)
    return CheckedFile(
        name=name,
        stored=data if was_gzip else junit.gzipped(xml),
        sha256=hashlib.sha256(xml).hexdigest(),
        unzipped_bytes=len(xml),
        cases=checked.cases,
        ran_at=checked.ran_at,
    )


def files_check(files: list[tuple[str, bytes]]) -> list[CheckedFile]:
    """Every file of the upload, within the upload's bounds (TooLarge names total and limit)."""
    checked: list[CheckedFile] = []
    unzipped = 0
    total_cases = 0
    for name, data in files:
        one = file_check(data, name=name, unzipped_budget=UNZIPPED_MAX_BYTES - unzipped)
        unzipped += one.unzipped_bytes
        total_cases += one.cases
        if total_cases > UPLOAD_MAX_CASES:
            more = " or more" if len(checked) + 1 < len(files) else ""
            raise junit.TooLarge(
                f"{total_cases:,}{more} test cases in one upload; "
                f"the limit is {UPLOAD_MAX_CASES:,}."
            )
        checked.append(one)
    return checked


def upload_identity(*, stage_id: int, commit: str, run_url: str, file_shas: list[str]) -> str:
    """The run's identity: the same run (stage, commit, run URL, files) uploaded twice is one."""
    parts = [str(stage_id), commit, run_url, *sorted(file_shas)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def upload_receive(
    *,
    team: Team,
    stage: PipelineStage,
    meta: RunMeta,
    files: list[CheckedFile],
    by: User | None,
) -> tuple[ResultUpload, bool]:
    """Keep the run's files for the worker and queue it; (upload, created).

    The same run sent again (same identity) returns the existing upload and `created` False:
    it counts once, also when two requests race (the unique constraint decides).
    """
    identity = upload_identity(
        stage_id=stage.pk,
        commit=meta.commit,
        run_url=meta.run_url,
        file_shas=[f.sha256 for f in files],
    )
    existing = ResultUpload.objects.filter(team=team, identity=identity).first()
    if existing is not None and existing.status == UploadStatus.FAILED:
        # A refused run kept nothing of itself: sending it again is a new try, not a duplicate.
        existing.delete()
    elif existing is not None:
        return existing, False
    now = timezone.now()
    stamps = [f.ran_at for f in files if f.ran_at is not None]
    # The earliest suite timestamp, but never in the future (a CI clock or zone gone wrong).
    ran_at = min([*stamps, now]) if stamps else now
    try:
        with transaction.atomic():
            upload = ResultUpload.objects.create(
                team=team,
                stage=stage,
                commit=meta.commit,
                branch=meta.branch,
                run_url=meta.run_url,
                release_version=meta.release_version,
                component=meta.component,
                identity=identity,
                cases=sum(f.cases for f in files),
                ran_at=ran_at,
                uploaded_by=by,
            )
            ResultFile.objects.bulk_create(
                ResultFile(upload=upload, name=f.name[:255], data=f.stored) for f in files
            )
            _queue_on_commit(upload.pk)
    except IntegrityError:
        raced = ResultUpload.objects.filter(team=team, identity=identity).first()
        if raced is None:
            raise
        return raced, False
    return upload, True


def _queue_on_commit(upload_id: int) -> None:
    def queue() -> None:
        try:
            registered_task(PROCESS_TASK).delay(upload_id)
        except Exception:  # the broker is down: evidence.sweep queues it again
            log.warning("upload %s: could not queue its processing; the sweep will", upload_id)

    transaction.on_commit(queue)


def upload_requeue(upload_id: int) -> None:
    """Queue an upload's processing again (the sweep, for a task the broker lost)."""
    registered_task(PROCESS_TASK).delay(upload_id)
