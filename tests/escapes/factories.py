from datetime import timedelta
from typing import Any

from django.utils import timezone

from escapes.models import Escape
from teams.models import Team


def make_escape(
    team: Team, title: str = "Cart total wrong for mixed currencies", **fields: Any
) -> Escape:
    """An escape written straight to the database, detected two days ago unless told.

    Merged three days and released two days before its detection, unless told: derived from
    the detection time, so a test that fixes that date gets times that fit it, on any day.
    """
    detected = fields.get("detected_at") or timezone.now() - timedelta(days=2)
    values: dict[str, Any] = {
        "merged_at": detected - timedelta(days=3),
        "released_at": detected - timedelta(days=2),
        "detected_at": detected,
    }
    values.update(fields)
    return Escape.objects.create(team=team, title=title, **values)
