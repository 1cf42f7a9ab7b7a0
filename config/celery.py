import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("leakseal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The integrations keep their pushes and their syncs in two modules.
app.autodiscover_tasks(["integrations"], related_name="tasks_push")
app.autodiscover_tasks(["integrations"], related_name="tasks_sync")


def registered_task(name: str) -> Task:
    """The task registered under `name`, for a service to queue its own app's task.

    Services queue by name so that a services module and the tasks module that calls it do
    not import each other; the task object is the one the worker runs (and tests patch).
    """
    if name not in app.tasks:
        # Outside a worker nothing has imported the apps' tasks modules yet: autodiscovery
        # runs on this signal of the loader, which a worker sends at start-up.
        app.loader.import_default_modules()
    return app.tasks[name]
