"""Retro summaries published to Confluence (integrations/confluence*.py), over real HTTP to a
fake Confluence that checks every request and answer against Atlassian's Confluence REST API
description (tests/fakes/specs/confluence_content_trimmed.json).

A team admin connects Confluence (Cloud or Data Center) with a space and a parent page; closing
a retro promises a notice in the close's transaction; the notices task publishes the summary as
a child page of the parent, and the retro's summary links to it. "Publish again" updates the
same page in place (a closed retro is final: there is no reopening). The token is a secret:
never in the database in clear, a page, a log line, a notice or the audit trail.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEntry
from integrations.confluence_publish import send
from integrations.models import ConfluenceConnection, ConfluenceDeployment, SummaryPage
from integrations.views_confluence import confluence_connection_save
from notices import delivery
from notices.models import Channel, Notice, NoticeState
from retros import services
from retros.models import Why
from tests.conftest import client_for
from tests.fakes import accounts
from tests.fakes.confluence import FakeConfluence
from tests.integrations.pushing import ready_retro
from tests.notices.broker import hold_deliveries

SECRETS = (accounts.CONFLUENCE_TOKEN, accounts.CONFLUENCE_PAT)


@pytest.fixture
def fake_confluence(settings) -> Iterator[FakeConfluence]:
    settings.DEBUG = True  # the fake speaks plain http, which only DEBUG allows
    fake = FakeConfluence().start()
    yield fake
    fake.stop()
    assert fake.violations == [], "Atlassian's Confluence contract was broken"


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """Deliveries queued instead of a broker; the tests deliver them by hand."""
    return hold_deliveries(monkeypatch)


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "https://leakseal.example.test"


def form(fake: FakeConfluence, *, cloud: bool = True, **overrides) -> dict:
    values = {
        "deployment": ConfluenceDeployment.CLOUD if cloud else ConfluenceDeployment.DATA_CENTER,
        "base_url": fake.url if cloud else f"{fake.url}/",
        "account_email": accounts.CONFLUENCE_EMAIL if cloud else "",
        "token": accounts.CONFLUENCE_TOKEN if cloud else accounts.CONFLUENCE_PAT,
        "space_key": accounts.CONFLUENCE_SPACE,
        "parent": accounts.CONFLUENCE_PARENT,
        "enabled": "on",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def page_url(team) -> str:
    return reverse("confluence_connection", kwargs={"team": team.slug})


def connect(team, fake: FakeConfluence, *, cloud: bool = True, enabled: bool = True):
    candidate = ConfluenceConnection(
        team=team,
        deployment=ConfluenceDeployment.CLOUD if cloud else ConfluenceDeployment.DATA_CENTER,
        base_url=fake.url,
        account_email=accounts.CONFLUENCE_EMAIL if cloud else "",
        space_key=accounts.CONFLUENCE_SPACE,
        parent_id=fake.parent_id,
        parent_title=accounts.CONFLUENCE_PARENT,
        enabled=enabled,
    )
    candidate.token = accounts.CONFLUENCE_TOKEN if cloud else accounts.CONFLUENCE_PAT
    return confluence_connection_save(team=team, candidate=candidate, by=None)


def close(retro):
    services.retro_close(retro=retro, by=retro.facilitator)


def summary_notices(retro) -> list[Notice]:
    return list(
        Notice.objects.filter(
            channel=Channel.CONFLUENCE, occasion__startswith=f"retro-summary:{retro.pk}:"
        ).order_by("pk")
    )


def due(notice: Notice) -> datetime:
    assert notice.next_attempt_at is not None
    return notice.next_attempt_at


def deliver_pending() -> list[str]:
    pending = Notice.objects.filter(state=NoticeState.PENDING).order_by("pk")
    return [delivery.deliver(pk) for pk in pending.values_list("pk", flat=True)]


@pytest.fixture
def retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


# --- Connecting on the settings page.


def test_an_admin_connects_confluence_cloud_and_never_sees_the_token_again(
    team, owner, fake_confluence, caplog
):
    caplog.set_level(logging.DEBUG)
    client = client_for(owner)
    response = client.post(page_url(team), form(fake_confluence))
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = ConfluenceConnection.objects.get(team=team)
    # The parent named by its title was found in the space: its id is kept.
    assert connection.parent_id == fake_confluence.parent_id
    assert connection.parent_title == accounts.CONFLUENCE_PARENT
    assert connection.token == accounts.CONFLUENCE_TOKEN
    assert accounts.CONFLUENCE_TOKEN not in connection.token_encrypted
    page = client.get(page_url(team)).content.decode()
    assert "space ENG, under “Retrospectives”" in page
    assert accounts.CONFLUENCE_TOKEN not in page
    entry = AuditEntry.objects.get(team=team, action=Action.CONFLUENCE_CONNECTED)
    assert entry.changes["token"] == "set"
    assert accounts.CONFLUENCE_TOKEN not in str(entry.changes)
    assert accounts.CONFLUENCE_TOKEN not in caplog.text
    # Saving again without a token keeps the stored one (same deployment and site).
    response = client.post(
        page_url(team), form(fake_confluence, token="", parent=fake_confluence.parent_id)
    )
    assert response.status_code == 302
    assert ConfluenceConnection.objects.get(team=team).token == accounts.CONFLUENCE_TOKEN


def test_a_data_center_connection_signs_in_with_its_personal_access_token(
    team, owner, fake_confluence
):
    response = client_for(owner).post(page_url(team), form(fake_confluence, cloud=False))
    assert response.status_code == 302
    connection = ConfluenceConnection.objects.get(team=team)
    assert connection.deployment == ConfluenceDeployment.DATA_CENTER
    assert connection.account_email == ""
    bearer = [
        r
        for r in fake_confluence.requests
        if r.headers.get("authorization", "").startswith("Bearer ")
    ]
    assert bearer and all(r.path.startswith("/wiki/rest/api/") for r in bearer)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"space_key": "NOPE"}, "space_key", "no space with the key NOPE"),
        ({"parent": "Post-mortems"}, "parent", "no page with the title “Post-mortems”"),
        ({"parent": "123456"}, "parent", "no page with id 123456"),
        ({"token": "wrong-token"}, "token", "refused the account email and API token"),
        ({"space_key": "Engineering team"}, "space_key", "not the space's name"),
        ({"account_email": ""}, "account_email", "email"),
        ({"base_url": "https://user:pw@acme.atlassian.net"}, "base_url", "Leave credentials out"),
    ],
)
def test_the_form_says_what_is_wrong_and_saves_nothing(
    team, owner, fake_confluence, overrides, field, words
):
    response = client_for(owner).post(page_url(team), form(fake_confluence, **overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not ConfluenceConnection.objects.filter(team=team).exists()
    assert accounts.CONFLUENCE_TOKEN not in response.content.decode()


def test_plain_http_is_refused_outside_debug(team, owner, fake_confluence, settings):
    settings.DEBUG = False
    response = client_for(owner).post(page_url(team), form(fake_confluence))
    assert response.status_code == 400
    assert "https://" in " ".join(response.context["form"].errors["base_url"])


def test_confluence_unreachable_saves_nothing(team, owner, fake_confluence):
    fake_confluence.fail("GET", r"/space/", status=503, times=None)
    response = client_for(owner).post(page_url(team), form(fake_confluence))
    assert response.status_code == 400
    assert "server error" in " ".join(response.context["form"].non_field_errors())
    assert not ConfluenceConnection.objects.filter(team=team).exists()


@pytest.mark.parametrize(("who", "status"), [("member", 403), ("viewer", 403), ("outsider", 404)])
def test_only_the_teams_admins_reach_the_page(team, request, who, status, fake_confluence):
    user = request.getfixturevalue(who)
    assert client_for(user).get(page_url(team)).status_code == status
    assert client_for(user).post(page_url(team), form(fake_confluence)).status_code == status
    assert not ConfluenceConnection.objects.exists()


def test_disconnecting_forgets_the_token_and_is_audited(team, owner, fake_confluence):
    connect(team, fake_confluence)
    client_for(owner).post(reverse("confluence_connection_delete", kwargs={"team": team.slug}))
    assert not ConfluenceConnection.objects.filter(team=team).exists()
    entry = AuditEntry.objects.get(team=team, action=Action.CONFLUENCE_DISCONNECTED)
    assert entry.changes == {"token": "cleared"}


# --- Publishing on close.


def test_closing_publishes_one_page_under_the_parent_and_the_summary_links_it(
    team, owner, retro, fake_confluence, queued, django_capture_on_commit_callbacks
):
    connect(team, fake_confluence)
    with django_capture_on_commit_callbacks(execute=True):
        close(retro)
    [notice] = summary_notices(retro)
    assert notice.recipient == "space:ENG"
    assert notice.occasion == f"retro-summary:{retro.pk}:1"
    assert notice.payload == {"retro": retro.pk, "publish": 1}
    assert queued == [notice.pk]  # queued on commit
    assert deliver_pending() == ["sent"]
    [page] = fake_confluence.children(fake_confluence.parent_id)
    assert page.title == f"Release 2026.11.1 retro — retro #{retro.pk}, {team.name}"
    assert page.version == 1
    assert "Latency contract test" in page.body
    assert "Root cause: " in page.body
    notice.refresh_from_db()
    assert notice.result["page_id"] == page.id
    assert notice.result["version"] == 1
    stored = SummaryPage.objects.get(retro=retro)
    assert stored.page_id == page.id
    # Confluence's own address of the page: its base and web UI link.
    assert (
        stored.url == f"{fake_confluence.url}/wiki/spaces/ENG/pages/{page.id}/{quote(page.title)}"
    )
    summary = (
        client_for(owner)
        .get(reverse("retro_summary", kwargs={"team": team.slug, "pk": retro.pk}))
        .content.decode()
    )
    assert "Published to Confluence" in summary
    assert f"/pages/{page.id}/" in summary
    assert "Publish again" in summary


def test_the_page_reads_as_typed_and_is_well_formed_storage_format(
    team, retro, escape, fake_confluence
):
    connect(team, fake_confluence)
    why = Why.objects.filter(retro=retro).first()
    assert why is not None
    Why.objects.filter(pk=why.pk).update(text='<script>alert("x")</script> & R&D\'s <b>')
    close(retro)
    assert deliver_pending() == ["sent"]
    [page] = fake_confluence.children(fake_confluence.parent_id)
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; R&amp;D&#x27;s &lt;b&gt;"
        in page.body
    )
    root = ET.fromstring(f"<body>{page.body}</body>")  # noqa: S314 (our own page)
    assert root.find(".//script") is None
    assert "https://leakseal.example.test/t/checkout/retros/" in page.body


def test_no_connection_means_no_notice_and_nothing_posted(team, retro, fake_confluence):
    close(retro)
    assert summary_notices(retro) == []
    assert not SummaryPage.objects.exists()
    assert fake_confluence.requests == []


def test_a_switched_off_connection_publishes_nothing(team, retro, fake_confluence):
    connect(team, fake_confluence, enabled=False)
    close(retro)
    assert summary_notices(retro) == []
    assert fake_confluence.requests == []


# --- Publish again: the same page, in place.


def test_publish_again_updates_the_same_page_in_place(team, owner, retro, fake_confluence):
    connect(team, fake_confluence, cloud=False)
    close(retro)
    assert deliver_pending() == ["sent"]
    [first] = fake_confluence.children(fake_confluence.parent_id)
    # The ticket moved on in the tracker since: publishing again shows it.
    retro.actions.update(external_key="SHOP-42", external_status="In Progress")
    response = client_for(owner).post(
        reverse("confluence_publish_again", kwargs={"team": team.slug, "pk": retro.pk})
    )
    assert response.status_code == 302
    notices = summary_notices(retro)
    assert [n.occasion for n in notices] == [
        f"retro-summary:{retro.pk}:1",
        f"retro-summary:{retro.pk}:2",
    ]
    assert deliver_pending() == ["sent"]
    [again] = fake_confluence.children(fake_confluence.parent_id)
    assert again.id == first.id
    assert again.version == 2
    assert "SHOP-42" in again.body and "In Progress" in again.body
    assert fake_confluence.calls("PUT", rf"/content/{first.id}$")
    assert len(fake_confluence.calls("POST", r"/content$")) == 1
    assert SummaryPage.objects.get(retro=retro).version == 2
    entry = AuditEntry.objects.get(team=team, action=Action.SUMMARY_REPUBLISHED)
    assert entry.changes == {"space": "ENG", "publish": 2}


def test_only_admins_publish_again_and_only_closed_retros(
    team, owner, member, outsider, retro, fake_confluence
):
    connect(team, fake_confluence)
    url = reverse("confluence_publish_again", kwargs={"team": team.slug, "pk": retro.pk})
    assert client_for(member).post(url).status_code == 403
    assert client_for(outsider).post(url).status_code == 404
    client_for(owner).post(url)  # still open: refused, nothing promised
    assert summary_notices(retro) == []


def test_a_page_deleted_in_confluence_is_published_anew_and_linked(
    team, owner, retro, fake_confluence
):
    connect(team, fake_confluence)
    close(retro)
    deliver_pending()
    [first] = fake_confluence.children(fake_confluence.parent_id)
    fake_confluence.delete_page(first.id)
    client_for(owner).post(
        reverse("confluence_publish_again", kwargs={"team": team.slug, "pk": retro.pk})
    )
    assert deliver_pending() == ["sent"]
    [second] = fake_confluence.children(fake_confluence.parent_id)
    assert second.id != first.id
    assert SummaryPage.objects.get(retro=retro).page_id == second.id
    summary = (
        client_for(owner)
        .get(reverse("retro_summary", kwargs={"team": team.slug, "pk": retro.pk}))
        .content.decode()
    )
    assert f"/pages/{second.id}/" in summary
    assert f"/pages/{first.id}/" not in summary


# --- Failures: retried like ticket pushes, or shown in the delivery log.


def test_a_rate_limited_publish_waits_for_retry_after(team, retro, fake_confluence):
    connect(team, fake_confluence)
    close(retro)
    fake_confluence.fail("GET", r"/content$", status=429, retry_after="30")
    start = timezone.now()
    assert deliver_pending() == ["retry"]
    [notice] = summary_notices(retro)
    assert notice.state == NoticeState.PENDING
    assert "rate limiting" in notice.last_error
    assert due(notice) >= start + timedelta(seconds=30)
    assert delivery.deliver(notice.pk) == "skipped"  # not before Retry-After
    with time_machine.travel(due(notice) + timedelta(seconds=1)):
        assert delivery.deliver(notice.pk) == "sent"
    assert len(fake_confluence.children(fake_confluence.parent_id)) == 1


def test_a_server_error_is_retried(team, retro, fake_confluence):
    connect(team, fake_confluence)
    close(retro)
    fake_confluence.fail("POST", r"/content$", status=500)
    assert deliver_pending() == ["retry"]
    [notice] = summary_notices(retro)
    with time_machine.travel(due(notice) + timedelta(seconds=1)):
        assert delivery.deliver(notice.pk) == "sent"
    assert len(fake_confluence.children(fake_confluence.parent_id)) == 1


def test_an_answer_lost_after_the_page_was_made_leaves_one_page(
    team, retro, fake_confluence, settings
):
    connect(team, fake_confluence)
    close(retro)
    settings.TRACKER_READ_TIMEOUT = 0.5
    fake_confluence.fail("POST", r"/content$", stall_after_handling=1.5)
    assert deliver_pending() == ["retry"]
    [notice] = summary_notices(retro)
    assert "did not answer in time" in notice.last_error
    assert len(fake_confluence.children(fake_confluence.parent_id)) == 1  # made, unheard
    with time_machine.travel(due(notice) + timedelta(seconds=1)):
        assert delivery.deliver(notice.pk) == "sent"
    [page] = fake_confluence.children(fake_confluence.parent_id)
    assert page.version == 2  # found by its title and updated, not made twice
    assert len(fake_confluence.calls("POST", r"/content$")) == 1


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "refused the account email and API token"),
        (403, "may not do this in space ENG"),
        (404, "found nothing"),
    ],
)
def test_a_refusal_fails_at_once_and_shows_in_the_delivery_log(
    team, owner, retro, fake_confluence, status, words
):
    connect(team, fake_confluence)
    close(retro)
    fake_confluence.fail("POST", r"/content$", status=status, times=None)
    assert deliver_pending() == ["failed"]
    [notice] = summary_notices(retro)
    assert notice.state == NoticeState.FAILED
    assert words in notice.last_error
    log_page = client_for(owner).get(reverse("delivery_log", kwargs={"team": team.slug}))
    assert words in log_page.content.decode()
    summary = (
        client_for(owner)
        .get(reverse("retro_summary", kwargs={"team": team.slug, "pk": retro.pk}))
        .content.decode()
    )
    assert "Publishing to Confluence failed" in summary
    for secret in SECRETS:
        assert secret not in notice.last_error


def test_a_missing_parent_fails_naming_it(team, retro, fake_confluence):
    connect(team, fake_confluence)
    fake_confluence.delete_page(fake_confluence.parent_id)
    close(retro)
    assert deliver_pending() == ["failed"]
    [notice] = summary_notices(retro)
    assert "creating the page" in notice.last_error and "404" in notice.last_error


def test_disconnected_before_sending_fails_without_posting(team, owner, retro, fake_confluence):
    connect(team, fake_confluence)
    close(retro)
    client_for(owner).post(reverse("confluence_connection_delete", kwargs={"team": team.slug}))
    before = len(fake_confluence.requests)
    assert deliver_pending() == ["failed"]
    assert "disconnected" in summary_notices(retro)[0].last_error
    assert len(fake_confluence.requests) == before


def test_the_token_is_never_logged_while_publishing(team, retro, fake_confluence, caplog):
    caplog.set_level(logging.DEBUG)
    connect(team, fake_confluence)
    close(retro)
    fake_confluence.fail("GET", r"/content$", status=401)
    deliver_pending()
    for secret in SECRETS:
        assert secret not in caplog.text
    assert delivery.SENDERS[Channel.CONFLUENCE] is send
