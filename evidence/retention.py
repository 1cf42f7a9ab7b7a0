"""What is kept how long (README, "What is kept how long"), and the lost-task sweep.

- `CommitResult`: COMMIT_KEEP_DAYS after the commit was first seen (a re-run later than that
  is not seen as a flip);
- `DailyResult`: DAILY_KEEP_DAYS (the windows of the flakiness page and the escape's panel);
- `ResultUpload` (its metadata: who sent which run, its counts, a refusal's reason):
  UPLOAD_KEEP_DAYS; its files are deleted as soon as the worker has read them, and any left
  (an upload never processed) go with it.
- `TrackedTest` and `MeasuredCatch` are kept (the test's all-time counters and the catches a
  release's measured count is made of).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from evidence.catches import measured_catches_refresh
from evidence.models import (
    COMMIT_KEEP_DAYS,
    DAILY_KEEP_DAYS,
    CommitResult,
    DailyResult,
    ResultFile,
    ResultUpload,
    UploadStatus,
)
from evidence.services import upload_requeue

log = logging.getLogger(__name__)

UPLOAD_KEEP_DAYS = 90
# An upload still queued this long after it arrived lost its task (the broker was down at
# commit, or the task failed on a database error): queue it again, at most this many a sweep.
STUCK_AFTER = timedelta(minutes=10)
SWEEP_MAX = 100
# An upload still queued this long has failed every try (the sweep queued it again each
# time): refused with the reason, its files deleted. The same run can then be sent again.
GIVE_UP_AFTER = timedelta(hours=6)
GAVE_UP = (
    "Not processed within 6 hours: the worker failed on it at every try (its log says why). "
    "Send the run again."
)


def prune() -> dict[str, int]:
    now = timezone.now()
    commits, _ = CommitResult.objects.filter(
        first_seen_at__lt=now - timedelta(days=COMMIT_KEEP_DAYS)
    ).delete()
    days, _ = DailyResult.objects.filter(
        day__lt=(now - timedelta(days=DAILY_KEEP_DAYS)).date()
    ).delete()
    uploads, _ = ResultUpload.objects.filter(
        received_at__lt=now - timedelta(days=UPLOAD_KEEP_DAYS)
    ).delete()
    counts = {"commit_results": commits, "daily_results": days, "uploads": uploads}
    log.info("evidence prune: %s", counts)
    return counts


def sweep() -> int:
    """Queue the stuck uploads again; refuse those stuck past GIVE_UP_AFTER."""
    now = timezone.now()
    with transaction.atomic():
        given_up = ResultUpload.objects.filter(
            status=UploadStatus.QUEUED, received_at__lt=now - GIVE_UP_AFTER
        )
        ResultFile.objects.filter(upload__in=given_up).delete()
        if count := given_up.update(status=UploadStatus.FAILED, error=GAVE_UP, processed_at=now):
            log.warning(
                "evidence sweep: %s uploads not processed in %s, refused", count, GIVE_UP_AFTER
            )
    stuck = list(
        ResultUpload.objects.filter(status=UploadStatus.QUEUED, received_at__lt=now - STUCK_AFTER)
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_MAX]
    )
    for pk in stuck:
        upload_requeue(pk)
    return len(stuck)


def recount() -> int:
    """Recount the measured catches of every team that uploaded in the last two days, over
    the last COMMIT_KEEP_DAYS (beat: daily): a release written while a worker's recount ran
    is right again by the next day. Returns the number of teams."""
    since = timezone.now() - timedelta(days=COMMIT_KEEP_DAYS)
    recent = ResultUpload.objects.filter(
        status=UploadStatus.DONE, received_at__gte=timezone.now() - timedelta(days=2)
    )
    stages: dict[int, set[int]] = {}
    for team_id, stage_id in recent.values_list("team_id", "stage_id").distinct():
        stages.setdefault(team_id, set()).add(stage_id)
    for team_id, stage_ids in stages.items():
        measured_catches_refresh(team_id, stage_ids, since)
    return len(stages)
