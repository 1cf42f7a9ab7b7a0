"""Reads of a team's tracker connection for the pages; the permission check is the caller's."""

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from integrations.models import ConnectionEvent, TrackerConnection
from teams.models import Team


def connection_for_team(team: Team) -> TrackerConnection | None:
    """The team's connection, or None when it has not connected a tracker."""
    return TrackerConnection.objects.select_related("team").filter(team=team).first()


def connection_events(connection: TrackerConnection, limit: int = 20) -> list[ConnectionEvent]:
    """The newest lines of the connection's log (what the sync found), newest first."""
    return list(
        ConnectionEvent.objects.filter(connection=connection)
        .select_related("action")
        .order_by("-at", "-pk")[:limit]
    )


def webhook_url(connection: TrackerConnection) -> str:
    """The absolute URL the tracker must call for this connection's deliveries.

    The webhook routes are named "webhook_jira" / "webhook_azure" (integrations.urls_webhooks);
    until they exist the path they will have is built by hand, so the page still says it.
    """
    name, prefix = ("webhook_jira", "jira") if connection.is_jira else ("webhook_azure", "azure")
    try:
        path = reverse(name, kwargs={"token": connection.webhook_token})
    except NoReverseMatch:
        path = f"/hooks/{prefix}/{connection.webhook_token}/"
    return f"{settings.SITE_URL}{path}"
