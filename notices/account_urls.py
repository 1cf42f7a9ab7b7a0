"""Under /settings/: the signed-in person's own settings."""

from django.urls import path

from notices import account_views

urlpatterns = [
    path("notifications/", account_views.notice_settings, name="notice_settings"),
    path(
        "notifications/digests/<int:pk>/resend/",
        account_views.own_digest_resend,
        name="own_digest_resend",
    ),
]
