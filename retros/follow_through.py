"""Follow-through without a tracker: a member marks a preventative action done in Leakseal.

An action's ticket, when it has one, says when the action is done (integrations/sync.py sets
`done_at` from the tracker's status). A team without a tracker, or an action whose push
failed, has no such signal, so any member who writes may mark the action done here, with a
short note and a link to where the guardrail can be seen (the merged test, the runbook).
Both paths set the same `done_at`, so the follow-through numbers, the reminders and the
sealing of the escape (`action_seal_follow`, shared with the tracker's path) count either.

Follow-through happens after the retro, so like the tracker's side of an action this is a
write a closed retro still takes, and the only one: an open retro's actions can still change
(and closing may yet give them tickets). It bumps the action's retro (its board and summary show
it) and every open retro of the team, whose boards list the earlier retros' open actions
(`earlier_open_actions`) and show the change live.
"""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from retros.models import DONE_NOTE_MAX, DONE_URL_MAX, Phase, PreventativeAction, Retrospective
from retros.services import _bump, _follow_through_changed, action_seal_follow
from teams.selectors import RuleDenied, team_membership

VIEWER_MESSAGE = "Viewers cannot mark actions done; ask a member of the team."


def _target(action: PreventativeAction) -> str:
    return f"Action #{action.pk} “{action.title}”"


def _locked(action: PreventativeAction, by: User) -> tuple[Retrospective, PreventativeAction]:
    """The action's retro row lock (the board's lock order), the fresh action, and the check
    that `by` writes in the team."""
    retro = Retrospective.objects.select_for_update().filter(pk=action.retro_id).first()
    fresh = (
        PreventativeAction.objects.select_related("escape", "retro__team")
        .filter(pk=action.pk)
        .first()
    )
    if retro is None or fresh is None:
        raise ValidationError("This action was deleted meanwhile.", code="gone")
    membership = team_membership(team_id=retro.team_id, user=by)
    if membership is None or not membership.can_write:
        raise RuleDenied(VIEWER_MESSAGE)
    if not retro.is_closed:
        raise ValidationError(
            "Mark actions done once the retrospective is closed; until then they can still change.",
            code="open",
        )
    if fresh.has_ticket:
        tracker = fresh.get_tracker_display() if fresh.tracker else "the tracker"
        ticket = f"the ticket {fresh.external_key}" if fresh.external_key else "its ticket"
        raise ValidationError(
            f"Done follows {ticket} in {tracker}: close it there and Leakseal marks the "
            "action done.",
            code="tracked",
        )
    return retro, fresh


def _clean(note: str, url: str) -> tuple[str, str]:
    errors: dict[str, str] = {}
    note, url = (note or "").strip(), (url or "").strip()
    if len(note) > DONE_NOTE_MAX:
        errors["note"] = f"Keep the note to {DONE_NOTE_MAX} characters (it has {len(note)})."
    if len(url) > DONE_URL_MAX:
        errors["url"] = f"Keep the link to {DONE_URL_MAX} characters (it has {len(url)})."
    elif url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            errors["url"] = "Enter a link starting with http:// or https://, or leave it empty."
    if errors:
        raise ValidationError(errors)
    return note, url


def _announce(retro: Retrospective, fresh: PreventativeAction) -> None:
    """The action's own board shows the card again; every open retro of the team re-fetches
    its panel of earlier actions. Locks in id order, after the action's retro (as
    retros/guide.py does for every open retro)."""
    _bump(retro, escape_id=fresh.escape_id)
    others = (
        Retrospective.objects.select_for_update()
        .filter(team_id=retro.team_id)
        .exclude(phase=Phase.CLOSED)
        .exclude(pk=retro.pk)
        .order_by("pk")
    )
    for other in others:
        _bump(other)
    _follow_through_changed(fresh.escape)


@transaction.atomic
def action_mark_done(
    *, action: PreventativeAction, by: User, note: str = "", url: str = ""
) -> PreventativeAction:
    """Mark an action without a tracker ticket done, now, by `by`, with an optional note and
    link; its escape is sealed. Marking a done action again updates its note and link and
    keeps the time it was first done."""
    retro, fresh = _locked(action, by)
    note, url = _clean(note, url)
    was_done = fresh.done_at is not None
    if not was_done:
        fresh.done_at = timezone.now()
        fresh.done_by = by
    fresh.done_note, fresh.done_url = note, url
    fresh.save(update_fields=["done_at", "done_by", "done_note", "done_url", "updated_at"])
    action_seal_follow(action=fresh)
    _announce(retro, fresh)
    record(
        team=fresh.retro.team,
        actor=by,
        action=Action.ACTION_MARKED_DONE,
        target=_target(fresh),
        changes={"note": note, "url": url, **({"again": True} if was_done else {})},
    )
    return fresh


@transaction.atomic
def action_mark_undone(*, action: PreventativeAction, by: User) -> PreventativeAction:
    """Reopen an action marked done in Leakseal: it counts as open (and overdue past its due
    date) again, and its escape is unsealed unless another of its actions is done."""
    retro, fresh = _locked(action, by)
    if fresh.done_at is None:
        raise ValidationError("This action is not done; nothing was changed.", code="not_done")
    before = {"done_at": fresh.done_at, "note": fresh.done_note, "url": fresh.done_url}
    fresh.done_at, fresh.done_by, fresh.done_note, fresh.done_url = None, None, "", ""
    fresh.save(update_fields=["done_at", "done_by", "done_note", "done_url", "updated_at"])
    action_seal_follow(action=fresh)
    _announce(retro, fresh)
    record(
        team=fresh.retro.team,
        actor=by,
        action=Action.ACTION_REOPENED,
        target=_target(fresh),
        changes=before,
    )
    return fresh
