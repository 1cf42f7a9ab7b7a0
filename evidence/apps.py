from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    """CI test results as evidence: JUnit XML uploads, per-test history, measured catches.

    It follows escapes' releases_changed: a new or moved release, or a cleared typed count,
    gets its measured catches counted (evidence/catches.py). escapes never imports evidence.
    """

    name = "evidence"

    def ready(self) -> None:
        from escapes.signals import releases_changed
        from evidence import catches

        releases_changed.connect(catches.on_releases_changed, dispatch_uid="evidence.catches")
