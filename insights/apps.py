from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """The numbers managers read: metrics, rollups, dashboards, the team page, their API.

    It follows escapes' and retros' signals; those apps never import insights.
    """

    name = "insights"

    def ready(self) -> None:
        from escapes.signals import escapes_changed, releases_changed
        from insights import receivers
        from retros.signals import actions_changed

        escapes_changed.connect(receivers.on_escapes_changed, dispatch_uid="insights.escapes")
        releases_changed.connect(receivers.on_releases_changed, dispatch_uid="insights.releases")
        actions_changed.connect(receivers.on_actions_changed, dispatch_uid="insights.actions")
