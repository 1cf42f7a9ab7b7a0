"""The tracker client for a connection: the one place that picks Jira or Azure DevOps."""

from integrations.azure import AzureClient
from integrations.jira import JiraClient
from integrations.models import TrackerConnection
from integrations.trackers import TrackerClient


def client_for(connection: TrackerConnection) -> TrackerClient:
    if connection.is_jira:
        return JiraClient(connection)
    return AzureClient(connection)
