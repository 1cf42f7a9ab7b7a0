"""URLs of the tracker and Confluence settings pages, under /t/<team>/integrations/."""

from django.urls import path

from integrations import views_confluence, views_settings

urlpatterns = [
    path("connection/", views_settings.connection_page, name="integration_connection"),
    path("connection/test/", views_settings.connection_test, name="integration_connection_test"),
    path(
        "connection/delete/",
        views_settings.connection_disconnect,
        name="integration_connection_delete",
    ),
    path("confluence/", views_confluence.confluence_page, name="confluence_connection"),
    path(
        "confluence/delete/",
        views_confluence.confluence_disconnect,
        name="confluence_connection_delete",
    ),
    path(
        "confluence/publish/<int:pk>/",
        views_confluence.confluence_publish_again,
        name="confluence_publish_again",
    ),
]
