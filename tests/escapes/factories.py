from datetime import timedelta
from typing import Any

from django.utils import timezone

from escapes.models import Escape
from teams.models import Team


def make_escape(
    team: Team, title: str = "Cart total wrong for mixed currencies", **fields: Any
) -> Escape:
    now = timezone.now()
    values: dict[str, Any] = {
        "merged_at": now - timedelta(days=5),
        "released_at": now - timedelta(days=4),
        "detected_at": now - timedelta(days=2),
    }
    values.update(fields)
    return Escape.objects.create(team=team, title=title, **values)
