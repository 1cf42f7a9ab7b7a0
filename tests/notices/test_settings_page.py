"""'Your settings' (/settings/notifications/): each person's own reminder and digest choices."""

from __future__ import annotations

import re

from notices.models import NoticePreferences
from tests.conftest import client_for

URL = "/settings/notifications/"


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
