from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Data to try Leakseal with: the demo team (`seed_demo`) and volume (`generate_escapes`).

    It writes through every app's services where it can, so it depends on them all and
    nothing depends on it.
    """

    name = "demo"
