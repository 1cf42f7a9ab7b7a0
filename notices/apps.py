from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class NoticesConfig(AppConfig):
    name = "notices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Each channel's sender and each schedule registers itself when its module is imported.
        for module in settings.NOTICE_SENDER_MODULES:
            import_module(module)
