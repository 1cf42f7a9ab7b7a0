"""What an admin posts on the tracker connection page, for the fake trackers' accounts."""

from typing import Any

from integrations.models import TrackerKind
from tests.fakes import accounts

JIRA_SITE = "https://acme.atlassian.net"


def jira_cloud_form(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": TrackerKind.JIRA_CLOUD,
        "base_url": JIRA_SITE,
        "project": accounts.JIRA_PROJECT,
        "board_id": str(accounts.JIRA_BOARD),
        "issue_type": "Task",
        "priority": "High",
        "account_email": accounts.JIRA_EMAIL,
        "token": accounts.JIRA_TOKEN,
        "webhook_secret": accounts.JIRA_WEBHOOK_SECRET,
        **overrides,
    }
