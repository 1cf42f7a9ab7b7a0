"""The audit trail: each audited change writes exactly one entry, in its own transaction, with
its actor and what changed, never a secret; admins read it, filter it, page it and export it;
entries older than the retention go."""

import csv
import io
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEntry
from audit.services import NotInTransaction, entries_prune, record
from audit.tasks import prune_task
from escapes.models import Escape
from escapes.services import escape_delete, escape_update
from integrations.models import TrackerConnection
from retros import services as retro_services
from retros.models import Phase
from teams.models import ApiToken, Role
from teams.services import api_token_create, api_token_revoke, membership_set
from tests.conftest import client_for
from tests.fakes import accounts
from tests.fakes.connection_forms import jira_cloud_form


def entries(team, action: str | None = None) -> list[AuditEntry]:
    found = AuditEntry.objects.filter(team=team)
    if action:
        found = found.filter(action=action)
    return list(found.order_by("id"))


def only_entry(team) -> AuditEntry:
    found = entries(team)
    assert len(found) == 1, [(e.action, e.target) for e in found]
    return found[0]


def stored(value: object) -> object:
    """A value as the entry's JSON keeps it (datetimes as ISO text)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


# --- record ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_record_refuses_to_run_outside_a_transaction(team, owner):
    with pytest.raises(NotInTransaction):
        record(team=team, actor=owner, action=Action.RETRO_CLOSED, target="Retro")
    with transaction.atomic():
        record(team=team, actor=owner, action=Action.RETRO_CLOSED, target="Retro")
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize("key", ["token", "webhook_secret", "password", "pat", "api-token"])
def test_record_refuses_a_secret_value(team, owner, key):
    with pytest.raises(ValueError, match="secret"):
        record(
            team=team,
            actor=owner,
            action=Action.TRACKER_CHANGED,
            target="Jira",
            changes={key: "hunter2-the-real-thing"},
        )
    record(
        team=team,
        actor=owner,
        action=Action.TRACKER_CHANGED,
        target="Jira",
        changes={key: "changed"},
    )


def test_record_keeps_the_actors_name_after_the_account_is_gone(team, owner):
    owner.first_name, owner.last_name = "Olivia", "Owens"
    owner.save()
    entry = record(team=team, actor=owner, action=Action.RETRO_CLOSED, target="Retro #1")
    owner.delete()
    entry.refresh_from_db()
    assert entry.actor is None
    assert entry.actor_name == "Olivia Owens (olivia)"


# --- Escapes ------------------------------------------------------------------------------


def test_editing_an_escapes_times_writes_which_times_changed(team, owner, escape):
    old_detected, old_resolved = escape.detected_at, escape.resolved_at
    new_detected = old_detected + timedelta(hours=3)
    new_resolved = new_detected + timedelta(hours=1)
    escape_update(
        escape=escape,
        data={"detected_at": new_detected, "resolved_at": new_resolved, "title": "Renamed"},
        by=owner,
    )
    entry = only_entry(team)
    assert entry.action == Action.ESCAPE_TIMES_EDITED
    assert entry.actor == owner and entry.actor_name == "olivia"
    assert entry.target == f"Escape #{escape.pk} “Renamed”"
    assert entry.changes == {
        "detected_at": stored({"from": old_detected, "to": new_detected}),
        "resolved_at": stored({"from": old_resolved, "to": new_resolved}),
    }


def test_an_edit_that_leaves_the_times_alone_writes_nothing(team, owner, escape):
    escape_update(escape=escape, data={"title": "Only the title", "component": "cart"}, by=owner)
    assert entries(team) == []


def test_the_edit_page_records_its_user(team, member, escape):
    # The form shows times to the minute: start from whole minutes, as one typed in would be.
    for name in ("merged_at", "released_at", "detected_at"):
        setattr(escape, name, getattr(escape, name).replace(second=0, microsecond=0))
    escape.save()
    url = reverse("escape_update", kwargs={"team": team.slug, "pk": escape.pk})
    tz = team.tzinfo
    form = {
        "title": escape.title,
        "merged_at": escape.merged_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "released_at": escape.released_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "detected_at": (escape.detected_at + timedelta(days=1))
        .astimezone(tz)
        .strftime("%Y-%m-%dT%H:%M"),
        "severity": escape.severity,
        "component": escape.component,
        "release": escape.release_id,
    }
    response = client_for(member).post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = only_entry(team)
    assert (entry.action, entry.actor) == (Action.ESCAPE_TIMES_EDITED, member)
    assert set(entry.changes) == {"detected_at"}


def test_the_api_records_the_tokens_owner(team, member, escape, client):
    _, raw = api_token_create(user=member, name="ci")
    detected = (escape.detected_at + timedelta(hours=2)).isoformat()
    response = client.patch(
        f"/api/v1/teams/{team.slug}/escapes/{escape.pk}",
        data=json.dumps({"detected_at": detected}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200, response.content
    entry = only_entry(team)
    assert (entry.action, entry.actor) == (Action.ESCAPE_TIMES_EDITED, member)
    assert raw not in json.dumps(entry.changes) + entry.target


def test_a_trackers_intake_is_named_as_the_actor(team, escape):
    escape_update(
        escape=escape,
        data={"detected_at": escape.detected_at - timedelta(hours=1)},
        via="Jira Cloud intake",
    )
    entry = only_entry(team)
    assert entry.actor is None and entry.actor_name == "Jira Cloud intake"


def test_deleting_an_escape_writes_what_it_was(team, owner, escape):
    pk, title = escape.pk, escape.title
    escape_delete(escape=escape, by=owner)
    assert not Escape.objects.filter(pk=pk).exists()
    entry = only_entry(team)
    assert (entry.action, entry.actor) == (Action.ESCAPE_DELETED, owner)
    assert entry.target == f"Escape #{pk} “{title}”"
    assert entry.changes["title"] == title
    assert entry.changes["detected_at"]


def test_the_admin_site_deletes_escapes_through_the_service(team, escape):
    staff = User.objects.create_superuser("root", "root@example.test", "pw-root")
    url = reverse("admin:escapes_escape_delete", args=[escape.pk])
    response = client_for(staff).post(url, {"post": "yes"})
    assert response.status_code == 302
    entry = only_entry(team)
    assert (entry.action, entry.actor) == (Action.ESCAPE_DELETED, staff)


def test_a_rolled_back_change_leaves_no_entry(team, owner, escape):
    before = escape.detected_at
    with pytest.raises(RuntimeError), transaction.atomic():
        escape_update(escape=escape, data={"detected_at": before + timedelta(hours=1)}, by=owner)
        assert len(entries(team)) == 1  # written, in the change's transaction ...
        raise RuntimeError("the request failed after the change")
    escape.refresh_from_db()
    assert escape.detected_at == before
    assert entries(team) == []  # ... and gone with it


# --- Retros -------------------------------------------------------------------------------


def test_closing_a_retro_writes_one_entry(team, closed_retro):
    entry = only_entry(team)
    assert entry.action == Action.RETRO_CLOSED
    assert entry.actor == closed_retro.facilitator
    assert entry.changes == {"phase": {"from": Phase.ACTIONS, "to": Phase.CLOSED}}
    assert entry.target == f"Retro #{closed_retro.pk} “{closed_retro.title}”"


def test_a_refused_close_writes_nothing(team, retro):
    from tests.retros.conftest import advance_to

    advance_to(retro, Phase.ACTIONS)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        retro_services.retro_close(retro=retro, by=retro.facilitator)
    assert entries(team) == []


def test_reopening_a_retro_from_the_board_records_who(team, whys_retro, facilitator):
    url = reverse("retro_reopen", kwargs={"team": team.slug, "pk": whys_retro.pk})
    response = client_for(facilitator).post(url, {"expected_phase": Phase.WHYS})
    assert response.status_code in (200, 302)
    entry = only_entry(team)
    assert (entry.action, entry.actor) == (Action.RETRO_REOPENED, facilitator)
    assert entry.changes == {"phase": {"from": Phase.WHYS, "to": Phase.CATEGORIZE}}


# --- API tokens ---------------------------------------------------------------------------


def test_revoking_a_token_writes_one_entry_in_each_of_its_owners_teams(team, other_team, member):
    membership_set(team=other_team, user=member, role=Role.VIEWER)
    token, raw = api_token_create(user=member, name="CI of checkout")
    response = client_for(member).post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    for t in (team, other_team):
        entry = only_entry(t)
        assert (entry.action, entry.actor) == (Action.TOKEN_REVOKED, member)
        assert entry.target == "API token “CI of checkout” of mia"
        assert raw not in entry.target + json.dumps(entry.changes)
        assert token.prefix not in entry.target + json.dumps(entry.changes)
    # Revoking it again changes nothing and writes nothing.
    api_token_revoke(token=ApiToken.objects.get(pk=token.pk), by=member)
    assert len(entries(team)) == 1


# --- The tracker connection ---------------------------------------------------------------


def _save(owner, team, **overrides: Any) -> None:
    url = reverse("integration_connection", kwargs={"team": team.slug})
    response = client_for(owner).post(url, jira_cloud_form(**overrides))
    assert response.status_code == 302, response.content.decode()[:3000]


SECRETS = (
    accounts.JIRA_TOKEN,
    accounts.JIRA_WEBHOOK_SECRET,
    "new-hook-secret-Zq9",
    "token-two-Xy7",
)


def _no_secret_anywhere(team) -> None:
    for entry in entries(team):
        text = entry.target + json.dumps(entry.changes) + entry.actor_name
        for secret in (*SECRETS, "pw-olivia"):
            assert secret not in text, (entry.action, secret)
    stored = TrackerConnection.objects.filter(team=team).first()
    if stored is not None:
        for column in (stored.token_encrypted, stored.webhook_secret_encrypted):
            for entry in entries(team):
                assert not column or column not in json.dumps(entry.changes)


def test_the_tracker_connection_is_audited_without_its_secrets(team, owner):
    _save(owner, team)
    connected = only_entry(team)
    assert (connected.action, connected.actor) == (Action.TRACKER_CONNECTED, owner)
    assert connected.changes["token"] == "set" and connected.changes["webhook_secret"] == "set"
    assert connected.changes["project"] == accounts.JIRA_PROJECT

    # Another project, secrets left empty (kept): one "changed" entry naming the project.
    _save(owner, team, project="SHIP", token="", webhook_secret="")
    changed = entries(team, Action.TRACKER_CHANGED)
    assert len(changed) == 1 and len(entries(team)) == 2
    assert changed[0].changes == {"project": {"from": accounts.JIRA_PROJECT, "to": "SHIP"}}

    # The same webhook secret typed again is no rotation; a new one is exactly one entry.
    _save(owner, team, project="SHIP", token="")
    assert len(entries(team)) == 2
    _save(owner, team, project="SHIP", token="", webhook_secret="new-hook-secret-Zq9")
    rotated = entries(team, Action.WEBHOOK_SECRET_ROTATED)
    assert len(rotated) == 1 and len(entries(team)) == 3
    assert rotated[0].changes == {"webhook_secret": "changed"}

    # A new token is a change of the connection, said as "changed" only.
    _save(owner, team, project="SHIP", token="token-two-Xy7", webhook_secret="")
    latest = entries(team)[-1]
    assert (latest.action, latest.changes) == (Action.TRACKER_CHANGED, {"token": "changed"})

    url = reverse("integration_connection_delete", kwargs={"team": team.slug})
    assert client_for(owner).post(url).status_code == 302
    gone = entries(team)[-1]
    assert (gone.action, gone.actor) == (Action.TRACKER_DISCONNECTED, owner)
    assert len(entries(team)) == 5
    _no_secret_anywhere(team)


# --- Prune --------------------------------------------------------------------------------


def _aged(team, owner, days: int) -> AuditEntry:
    entry = record(team=team, actor=owner, action=Action.RETRO_CLOSED, target=f"{days} days")
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=days))
    return entry


def test_entries_are_kept_400_days_then_pruned(team, owner, settings):
    assert settings.AUDIT_RETENTION_DAYS == 400
    kept = [_aged(team, owner, d) for d in (0, 365, 399)]
    for d in (401, 800):
        _aged(team, owner, d)
    assert entries_prune() == 2
    assert {e.pk for e in entries(team)} == {e.pk for e in kept}


def test_the_prune_command_and_task(team, owner, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    _aged(team, owner, 366)
    _aged(team, owner, 10)
    out = io.StringIO()
    call_command("prune_audit", stdout=out)
    assert "Deleted 1 audit entry older than 365 days." in out.getvalue()
    _aged(team, owner, 500)
    assert prune_task() == 1
    assert len(entries(team)) == 1
    assert settings.CELERY_BEAT_SCHEDULE["audit-prune"]["task"] == "audit.prune"


def test_a_retention_under_a_year_is_refused():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "AUDIT_RETENTION_DAYS": "30", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "AUDIT_RETENTION_DAYS must be at least 365" in result.stderr


# --- The page and the CSV -----------------------------------------------------------------


def _page(team) -> str:
    return reverse("audit_list", kwargs={"team": team.slug})


def test_the_page_lists_newest_first_and_filters_by_action(team, owner, escape):
    escape_update(
        escape=escape, data={"detected_at": escape.detected_at + timedelta(hours=1)}, by=owner
    )
    with transaction.atomic():
        record(team=team, actor=owner, action=Action.RETRO_CLOSED, target="Retro #9 “Q3”")
    client = client_for(owner)
    body = client.get(_page(team)).content.decode()
    assert body.index("Retro #9 “Q3”") < body.index(f"Escape #{escape.pk}")
    assert "Detected at" in body and "olivia" in body

    filtered = client.get(_page(team), {"action": Action.ESCAPE_TIMES_EDITED}).content.decode()
    assert f"Escape #{escape.pk}" in filtered and "Retro #9" not in filtered
    assert "1 entry of this kind" in filtered

    bad = client.get(_page(team), {"action": "nonsense"})
    assert bad.status_code == 200
    assert "Select a valid choice" in bad.content.decode()
    # Beside the filter, which points at it (Django marks the field and describes it by id).
    assert 'aria-describedby="id_action_error"' in bad.content.decode()
    assert 'role="alert" id="id_action_error"' in bad.content.decode()


def test_the_page_is_paginated(team, owner):
    with transaction.atomic():
        for n in range(55):
            record(team=team, actor=owner, action=Action.RETRO_CLOSED, target=f"Retro number {n}")
    client = client_for(owner)
    first = client.get(_page(team)).content.decode()
    assert "Retro number 54" in first and "Retro number 4<" not in first
    assert "Page 1 of 2" in first
    second = client.get(_page(team), {"page": 2}).content.decode()
    assert "Retro number 4<" in second and "Retro number 54" not in second
    partial = client.get(_page(team), {"page": 2}, headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<div id="audit-results">')


def test_another_teams_entries_never_show(team, other_team, owner, outsider):
    with transaction.atomic():
        record(team=other_team, actor=outsider, action=Action.RETRO_CLOSED, target="Their retro")
    assert "Their retro" not in client_for(owner).get(_page(team)).content.decode()


def test_the_csv_neutralises_formulas_and_follows_the_filter(team, owner):
    with transaction.atomic():
        record(team=team, actor=owner, action=Action.RETRO_CLOSED, target='=HYPERLINK("x")')
        record(
            team=team,
            actor=owner,
            action=Action.ESCAPE_DELETED,
            target="Escape #3 “@SUM(A1)”",
            changes={"title": "+1 checkout"},
        )
    url = reverse("audit_csv", kwargs={"team": team.slug})
    response = client_for(owner).get(url)
    assert response["Content-Type"].startswith("text/csv")
    assert f"leakseal-audit-{team.slug}-" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["time_utc", "actor", "action", "action_label", "target", "changes"]
    assert [r[2] for r in rows[1:]] == [Action.ESCAPE_DELETED, Action.RETRO_CLOSED]
    assert rows[2][4] == '\'=HYPERLINK("x")'
    assert rows[1][4] == "Escape #3 “@SUM(A1)”"
    assert json.loads(rows[1][5]) == {"title": "+1 checkout"}
    only = client_for(owner).get(url, {"action": Action.RETRO_CLOSED}).content.decode()
    assert len(list(csv.reader(io.StringIO(only)))) == 2


def test_admins_find_the_trail_from_their_teams(team, owner, member):
    link = reverse("audit_list", kwargs={"team": team.slug})
    for page in ("/", reverse("team_home", kwargs={"team": team.slug})):
        assert link in client_for(owner).get(page).content.decode()
        assert link not in client_for(member).get(page).content.decode()
