"""Retro pages, mounted under /t/<team>/retros/ (config/urls.py)."""

from django.urls import path

from retros import views

urlpatterns = [
    path("", views.retro_list, name="retro_list"),
    path("new/", views.retro_create, name="retro_create"),
    path("<int:pk>/", views.retro_detail, name="retro_detail"),
    path("<int:pk>/summary/", views.retro_summary, name="retro_summary"),
    path("<int:pk>/summary.md", views.retro_summary_markdown, name="retro_summary_markdown"),
    # Facilitation.
    path("<int:pk>/escapes/add/", views.retro_escape_add, name="retro_escape_add"),
    path(
        "<int:pk>/escapes/<int:escape_id>/remove/",
        views.retro_escape_remove,
        name="retro_escape_remove",
    ),
    path("<int:pk>/advance/", views.retro_advance, name="retro_advance"),
    path("<int:pk>/reopen/", views.retro_reopen, name="retro_reopen"),
    path("<int:pk>/close/", views.retro_close, name="retro_close"),
    # An escape card.
    path("<int:pk>/escapes/<int:escape_id>/classify/", views.retro_classify, name="retro_classify"),
    path("<int:pk>/escapes/<int:escape_id>/whys/", views.retro_why_add, name="retro_why_add"),
    path("<int:pk>/whys/<int:why_id>/edit/", views.retro_why_edit, name="retro_why_edit"),
    path("<int:pk>/whys/<int:why_id>/delete/", views.retro_why_delete, name="retro_why_delete"),
    path(
        "<int:pk>/whys/<int:why_id>/root-cause/",
        views.retro_why_mark_root_cause,
        name="retro_why_mark_root_cause",
    ),
    path(
        "<int:pk>/whys/<int:why_id>/root-cause/clear/",
        views.retro_why_unmark_root_cause,
        name="retro_why_unmark_root_cause",
    ),
    path(
        "<int:pk>/escapes/<int:escape_id>/actions/",
        views.retro_action_add,
        name="retro_action_add",
    ),
    path(
        "<int:pk>/actions/<int:action_id>/edit/", views.retro_action_edit, name="retro_action_edit"
    ),
    path(
        "<int:pk>/actions/<int:action_id>/delete/",
        views.retro_action_delete,
        name="retro_action_delete",
    ),
]
