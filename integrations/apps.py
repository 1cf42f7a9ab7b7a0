from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations.receivers import on_retro_closed
        from retros.signals import retro_closed

        retro_closed.connect(on_retro_closed, dispatch_uid="integrations.pushes_queue")
