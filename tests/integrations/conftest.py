"""Fake trackers over real HTTP, and the team connections that point at them.

Each fake checks every exchange against the vendor's spec; a test that made it see a request
or give an answer the spec does not allow fails at teardown with the reason.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from config.celery import app as celery_app
from integrations.models import TrackerConnection, TrackerKind
from tests.fakes import accounts
from tests.integrations.pushing import Side


@pytest.fixture
def fake_jira() -> Iterator[Any]:
    from tests.fakes.jira import FakeJira

    fake = FakeJira().start()
    yield fake
    fake.stop()
    assert fake.violations == [], "the Jira fake saw exchanges its spec does not allow"


@pytest.fixture
def fake_azure() -> Iterator[Any]:
    from tests.fakes.azure import FakeAzure

    fake = FakeAzure().start()
    yield fake
    fake.stop()
    assert fake.violations == [], "the Azure DevOps fake saw exchanges its spec does not allow"


@pytest.fixture
def jira_connection(team, fake_jira) -> TrackerConnection:
    connection = TrackerConnection(
        team=team,
        kind=TrackerKind.JIRA_CLOUD,
        base_url=fake_jira.url,
        project=accounts.JIRA_PROJECT,
        board_id=accounts.JIRA_BOARD,
        issue_type="Task",
        account_email=accounts.JIRA_EMAIL,
    )
    connection.token = accounts.JIRA_TOKEN
    connection.webhook_secret = accounts.JIRA_WEBHOOK_SECRET
    connection.save()
    return connection


@pytest.fixture
def azure_connection(team, fake_azure) -> TrackerConnection:
    connection = TrackerConnection(
        team=team,
        kind=TrackerKind.AZURE_DEVOPS,
        base_url=f"{fake_azure.url}/{accounts.ADO_ORG}",
        project=accounts.ADO_PROJECT,
        ado_team=accounts.ADO_TEAM,
        issue_type="Task",
        webhook_username=accounts.ADO_HOOK_USER,
    )
    connection.token = accounts.ADO_PAT
    connection.webhook_secret = accounts.ADO_HOOK_PASSWORD
    connection.save()
    return connection


@pytest.fixture
def eager():
    """Run queued tasks in place (as a worker would, minus the broker).

    Retries run at once, ignoring their countdown. Errors are not propagated: celery's eager
    retry only works that way; the tests look at the rows and the tracker instead.
    """
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, False
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture(params=["jira", "azure_devops"])
def side(request) -> Side:
    if request.param == "jira":
        return Side(
            request.getfixturevalue("fake_jira"),
            request.getfixturevalue("jira_connection"),
            r"/rest/api/[23]/issue$",
        )
    return Side(
        request.getfixturevalue("fake_azure"),
        request.getfixturevalue("azure_connection"),
        r"/_apis/wit/workitems/\$",
    )
