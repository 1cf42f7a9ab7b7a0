from django.apps import AppConfig


class RetrosConfig(AppConfig):
    name = "retros"
