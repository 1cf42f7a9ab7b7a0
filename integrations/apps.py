from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations.receivers import (
            on_retro_closed,
            on_summary_publishing_asked,
            on_tracker_target_asked,
        )
        from retros.signals import retro_closed, summary_publishing_asked, tracker_target_asked

        retro_closed.connect(on_retro_closed, dispatch_uid="integrations.pushes_queue")
        tracker_target_asked.connect(
            on_tracker_target_asked, dispatch_uid="integrations.tracker_target"
        )
        summary_publishing_asked.connect(
            on_summary_publishing_asked, dispatch_uid="integrations.summary_publishing"
        )
