"""A ticket push that fails for good is posted to the team's chat channels (notices/chat.py),
from the transaction that marks it failed; a transient failure that will be retried is not.
"""

import json

import pytest

from notices.models import ChatKind, Notice
from tests.integrations.test_push import close, fresh_action, ready_retro
from tests.notices.test_chat import connect, deliver_all, fake_slack, queued  # noqa: F401


@pytest.fixture
def retro(team, facilitator, member, stages, escape):
    return ready_retro(team, facilitator, member, stages, [escape])


def test_a_permanently_failed_push_is_posted_to_chat(
    retro,
    jira_connection,
    fake_slack,  # noqa: F811
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    connect(retro.team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["push_failed"])
    jira_connection.issue_type = "Incident"  # not a type of this project: refused for good
    jira_connection.save()
    from integrations import push

    monkeypatch.setattr(push, "_enqueue", lambda push_id, attempt: None)
    close(retro, django_capture_on_commit_callbacks)
    assert not Notice.objects.exists()  # closing alone says nothing to this channel
    action = fresh_action(retro)
    assert push.action_push(push_id=action.push.pk, attempt=0) == "failed"

    notice = Notice.objects.get()
    assert notice.kind == "push_failed" and notice.occasion.startswith(f"push-failed:{action.pk}:")
    assert deliver_all() == ["sent"]
    text = json.dumps(fake_slack.messages()[0])
    assert action.title in text and "Specify a valid issue type" in text
    assert f"/retros/{retro.pk}/" in text


def test_a_transient_push_failure_posts_nothing(
    retro,
    jira_connection,
    fake_jira,
    fake_slack,  # noqa: F811
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    connect(retro.team, ChatKind.SLACK_WEBHOOK, fake_slack.webhook(), events=["push_failed"])
    from integrations import push

    monkeypatch.setattr(push, "_enqueue", lambda push_id, attempt: None)
    close(retro, django_capture_on_commit_callbacks)
    fake_jira.fail("POST", r"/issue$", status=503)
    with pytest.raises(push.PushRetry):
        push.action_push(push_id=fresh_action(retro).push.pk, attempt=0)
    assert not Notice.objects.exists()
