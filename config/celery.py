import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("leakseal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The integrations keep their pushes and their syncs in two modules.
app.autodiscover_tasks(["integrations"], related_name="tasks_push")
app.autodiscover_tasks(["integrations"], related_name="tasks_sync")
