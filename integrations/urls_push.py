"""URLs of the tracker integration's push pages, under /t/<team>/integrations/."""

from django.urls import path

from integrations import views_push

urlpatterns = [
    path(
        "actions/<int:action_id>/push/retry/",
        views_push.action_push_retry_view,
        name="action_push_retry",
    ),
]
