"""'Your settings' (/settings/notifications/): each person's own reminder and digest choices."""

from __future__ import annotations

import re

from django.db import transaction

from notices.models import Notice, NoticePreferences, NoticeState
from notices.services import notice_enqueue
from tests.conftest import client_for

URL = "/settings/notifications/"


def failed_all_teams_digest(person, **fields: object) -> Notice:
    """The person (given an email address) and their "all my teams" digest of a Monday, which
    did not go out: `fields` say how it failed."""
    person.email = "mia@example.test"
    person.save(update_fields=["email"])
    with transaction.atomic():
        digest = notice_enqueue(
            team=None,
            channel="email",
            recipient=person.email,
            kind="digest",
            occasion=f"digest-all:{person.pk}:2026-12-07",
            subject="Weekly digest, all teams",
        )
    assert digest is not None
    Notice.objects.filter(pk=digest.pk).update(state=NoticeState.FAILED, **fields)
    digest.refresh_from_db()
    return digest


def test_the_page_offers_only_the_users_own_teams(member, team, other_team):
    page = client_for(member).get(URL).content.decode()
    assert "Mute reminders about my preventative actions" in page
    assert f'value="{team.pk}"' in page and f'value="{other_team.pk}"' not in page
    assert 'href="/settings/notifications/">Your settings</a>' in page  # the Account nav


def test_choices_are_saved_and_shown_again(member, team):
    client = client_for(member)
    response = client.post(URL, {"mute_reminders": "on", "digest_teams": [team.pk]})
    assert response.status_code == 302
    prefs = NoticePreferences.objects.get(user=member)
    assert prefs.mute_reminders and not prefs.digest_all_teams
    assert list(prefs.digest_teams.all()) == [team]
    page = client.get(URL).content.decode()
    assert "Your notification settings are saved." in page
    assert re.search(r'<input type="checkbox" name="mute_reminders"[^>]* checked>', page)
    assert not re.search(r'<input type="checkbox" name="digest_all_teams"[^>]* checked>', page)
    assert f'value="{team.pk}" id="id_digest_teams_0" checked' in page


def test_bad_choices_are_refused_with_a_reason(member, team, other_team):
    client = client_for(member)
    both = client.post(URL, {"digest_all_teams": "on", "digest_teams": [team.pk]})
    assert both.status_code == 200
    assert "Choose either the digest of all your teams or digests of some teams" in (
        both.content.decode()
    )
    foreign = client.post(URL, {"digest_teams": [other_team.pk]})
    assert "Select a valid choice." in foreign.content.decode()
    assert not NoticePreferences.objects.filter(user=member).exists()


def test_the_page_lists_emails_to_the_person_including_their_all_teams_digest(
    member, team, other_team
):
    """An "all my teams" digest belongs to no team's delivery log; the person sees it here,
    with their teams' emails to them, and nobody else's."""
    failed_all_teams_digest(member, last_error="The mail server refused the address")
    with transaction.atomic():
        notice_enqueue(
            team=team,
            channel="email",
            recipient=member.email,
            kind="reminder",
            occasion="action-due:1:2026-12-07",
            subject="Your action is due today",
        )
        notice_enqueue(  # another person's all-teams digest, and another team's email
            team=None,
            channel="email",
            recipient="someone@example.test",
            kind="digest",
            occasion="digest-all:999:2026-12-07",
            subject="Someone else's digest",
        )
        notice_enqueue(
            team=other_team,
            channel="email",
            recipient=member.email,
            kind="reminder",
            occasion="action-due:2:2026-12-07",
            subject="Of a team they are not in",
        )
    page = client_for(member).get(URL).content.decode()
    assert "Weekly digest, all teams" in page and "all your teams" in page
    assert "The mail server refused the address" in page
    assert "Your action is due today" in page and team.name in page
    assert "Someone else" not in page and "Of a team they are not in" not in page


def test_a_person_sends_their_own_failed_all_teams_digest_again_and_nobody_elses(
    member, facilitator, django_capture_on_commit_callbacks
):
    """Their "all my teams" digest is in no team's delivery log, so no admin can resend it."""
    digest = failed_all_teams_digest(
        member, attempts=8, last_error="gave up after 8 tries: timed out"
    )
    resend = f"/settings/notifications/digests/{digest.pk}/resend/"
    page = client_for(member).get(URL).content.decode()
    assert f'action="{resend}"' in page and "Send again" in page

    # A teammate, and a GET: refused, and the digest stays as it was.
    assert client_for(facilitator).post(resend).status_code == 404
    assert client_for(member).get(resend).status_code == 405
    assert Notice.objects.get(pk=digest.pk).state == NoticeState.FAILED

    with django_capture_on_commit_callbacks() as queued:
        response = client_for(member).post(resend, follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert "will be sent again in a moment" in response.content.decode()
    digest.refresh_from_db()
    assert (digest.state, digest.attempts) == (NoticeState.PENDING, 0)
    assert len(queued) == 1  # its task, once the resend commits
    page = client_for(member).get(URL).content.decode()
    assert f'action="{resend}"' not in page
    assert "Waiting" in page and "gave up after 8 tries" not in page  # a new series of tries
