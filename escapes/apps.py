from django.apps import AppConfig


class EscapesConfig(AppConfig):
    name = "escapes"
