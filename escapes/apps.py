from django.apps import AppConfig


class EscapesConfig(AppConfig):
    name = "escapes"

    def ready(self) -> None:
        from escapes.receivers import on_team_created
        from teams.signals import team_created

        team_created.connect(on_team_created, dispatch_uid="escapes.default_stages")
