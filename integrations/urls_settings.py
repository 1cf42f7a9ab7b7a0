"""URLs of the tracker integration's settings pages, under /t/<team>/integrations/."""

from django.urls import path

from integrations import views_settings

urlpatterns = [
    path("connection/", views_settings.connection_page, name="integration_connection"),
    path("connection/test/", views_settings.connection_test, name="integration_connection_test"),
    path(
        "connection/delete/",
        views_settings.connection_disconnect,
        name="integration_connection_delete",
    ),
]
