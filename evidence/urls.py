"""The team's test evidence pages, under /t/<team>/tests/."""

from django.urls import path

from evidence import views

urlpatterns = [
    path("", views.flakiness, name="test_flakiness"),
    path("uploads/", views.upload_list, name="test_uploads"),
    path("setup/", views.ci_setup, name="test_setup"),
    path("<int:pk>/", views.test_detail, name="test_detail"),
    path("<int:pk>/quarantine/", views.quarantine_add_view, name="test_quarantine_add"),
    path(
        "<int:pk>/quarantine/remove/",
        views.quarantine_remove_view,
        name="test_quarantine_remove",
    ),
]
