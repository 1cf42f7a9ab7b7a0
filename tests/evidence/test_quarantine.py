"""The team's quarantine list: add with a reason, remove; audited; viewers read only."""

import pytest
from django.core.exceptions import ValidationError

from audit.models import Action, AuditEntry
from evidence.models import Quarantine
from evidence.quarantine import quarantine_add, quarantine_remove
from tests.conftest import client_for
from tests.evidence.test_pages import make_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def test(team, stages):
    return make_test(team, stages[1], "test_gateway_timeout")


def test_adding_and_removing_is_audited(test, member):
    entry = quarantine_add(test=test, reason="  SHOP-7:   sandbox down ", by=member)
    assert entry.reason == "SHOP-7: sandbox down" and entry.added_by == member
    audit = AuditEntry.objects.get(action=Action.TEST_QUARANTINED)
    assert audit.target == "shop.CheckoutTest::test_gateway_timeout"
    assert audit.changes == {"reason": "SHOP-7: sandbox down", "stage": "Integration"}
    assert audit.actor == member
    # The same reason again changes nothing; another one is recorded as a change.
    quarantine_add(test=test, reason="SHOP-7: sandbox down", by=member)
    assert AuditEntry.objects.filter(action=Action.TEST_QUARANTINED).count() == 1
    quarantine_add(test=test, reason="SHOP-9", by=member)
    changed = AuditEntry.objects.filter(action=Action.TEST_QUARANTINED).first()
    assert changed is not None
    assert changed.changes == {"reason": {"from": "SHOP-7: sandbox down", "to": "SHOP-9"}}
    assert Quarantine.objects.count() == 1
    assert quarantine_remove(test=test, by=member) is True
    removed = AuditEntry.objects.get(action=Action.TEST_UNQUARANTINED)
    assert removed.changes["reason"] == "SHOP-9"
    assert not Quarantine.objects.exists()
    assert quarantine_remove(test=test, by=member) is False


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_a_reason_is_required_and_bounded(test, member, reason):
    with pytest.raises(ValidationError):
        quarantine_add(test=test, reason=reason, by=member)
    assert not Quarantine.objects.exists()
    assert not AuditEntry.objects.filter(action=Action.TEST_QUARANTINED).exists()


def test_a_member_quarantines_from_the_tests_page(test, team, member):
    client = client_for(member)
    url = f"/t/{team.slug}/tests/{test.pk}/"
    page = client.get(url).content.decode()
    assert 'name="reason"' in page
    response = client.post(url + "quarantine/", {"reason": "Flaky on the shared runner"})
    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url).content.decode()
    assert "Flaky on the shared runner" in page and "is quarantined" in page
    listed = client.get(f"/t/{team.slug}/tests/").content.decode()
    assert "Flaky on the shared runner" in listed or "No test results yet" in listed
    response = client.post(url + "quarantine/remove/")
    assert response.status_code == 302
    assert not Quarantine.objects.exists()
    assert "Not quarantined" in client.get(url).content.decode()


def test_a_missing_reason_is_refused_beside_the_field(test, team, member):
    client = client_for(member)
    response = client.post(f"/t/{team.slug}/tests/{test.pk}/quarantine/", {"reason": "  "})
    assert response.status_code == 200  # the page again, the form's error beside the field
    page = response.content.decode()
    assert "the reason is required" in page
    assert 'aria-invalid="true"' in page
    assert not Quarantine.objects.exists()


def test_a_viewer_reads_but_may_not_quarantine(test, team, viewer):
    client = client_for(viewer)
    page = client.get(f"/t/{team.slug}/tests/{test.pk}/").content.decode()
    assert 'name="reason"' not in page
    url = f"/t/{team.slug}/tests/{test.pk}/quarantine/"
    assert client.post(url, {"reason": "mine"}).status_code == 403
    Quarantine.objects.create(test=test, reason="theirs")
    assert client.post(url + "remove/").status_code == 403
    assert Quarantine.objects.count() == 1


def test_an_outsider_gets_404(test, team, outsider):
    client = client_for(outsider)
    url = f"/t/{team.slug}/tests/{test.pk}/quarantine/"
    assert client.post(url, {"reason": "x"}).status_code == 404
    assert client.post(url + "remove/").status_code == 404
