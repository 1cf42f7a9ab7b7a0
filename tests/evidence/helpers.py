"""Send a run through the upload service and the worker's fold, as the API and the task do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from escapes.models import PipelineStage
from evidence.models import ResultUpload, TrackedTest
from evidence.processing import test_key, upload_process
from evidence.services import RunMeta, files_check, upload_receive
from teams.models import Team
from tests.evidence.factories import Case, junit_xml


def send(
    team: Team,
    stage: PipelineStage,
    cases: Sequence[Case],
    *,
    commit: str,
    at: datetime,
    release: str = "",
    component: str = "",
    run_url: str | None = None,
    process: bool = True,
) -> ResultUpload:
    """One pipeline run at `at` (its suite timestamp), received and, by default, folded."""
    files = files_check([("results.xml", junit_xml(cases, timestamp=at))])
    upload, created = upload_receive(
        team=team,
        stage=stage,
        meta=RunMeta(
            commit=commit,
            run_url=run_url if run_url is not None else f"https://ci.example.com/{commit}/{at}",
            release_version=release,
            component=component,
        ),
        files=files,
        by=None,
    )
    assert created, "each run of these tests is a new upload"
    if process:
        assert upload_process(upload.pk) == "done"
        upload.refresh_from_db()
    return upload


def tracked(stage: PipelineStage, classname: str, name: str) -> TrackedTest:
    return TrackedTest.objects.get(stage=stage, key=test_key(classname, name))
