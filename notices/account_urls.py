"""Under /settings/: the signed-in person's own settings."""

from django.urls import path

from notices import account_views

urlpatterns = [
    path("notifications/", account_views.notice_settings, name="notice_settings"),
]
