"""Retro pages, mounted under /t/<team>/retros/ (config/urls.py)."""

from django.urls import path

from retros import (
    stream,
    views,
    views_cards,
    views_facilitation,
    views_follow,
    views_gather,
    views_guide,
)

urlpatterns = [
    path("", views.retro_list, name="retro_list"),
    path("new/", views.retro_create, name="retro_create"),
    # The team's guiding questions for the Five Whys (retros/views_guide.py).
    path("guide/", views_guide.retro_guide, name="retro_guide"),
    path("guide/<str:category>/", views_guide.retro_guide_save, name="retro_guide_save"),
    path("guide/<str:category>/reset/", views_guide.retro_guide_reset, name="retro_guide_reset"),
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
    # Gather for every member: propose or record escapes, keep them; facts on a card
    # (retros/views_gather.py).
    path(
        "<int:pk>/escapes/propose/",
        views_gather.retro_escape_propose,
        name="retro_escape_propose",
    ),
    path("<int:pk>/escapes/new/", views_gather.retro_escape_new, name="retro_escape_new"),
    path(
        "<int:pk>/escapes/<int:escape_id>/keep/",
        views_gather.retro_escape_keep,
        name="retro_escape_keep",
    ),
    path(
        "<int:pk>/escapes/<int:escape_id>/facts/",
        views_gather.retro_fact_add,
        name="retro_fact_add",
    ),
    path(
        "<int:pk>/facts/<int:fact_id>/delete/",
        views_gather.retro_fact_delete,
        name="retro_fact_delete",
    ),
    path("<int:pk>/advance/", views.retro_advance, name="retro_advance"),
    path("<int:pk>/reopen/", views.retro_reopen, name="retro_reopen"),
    path("<int:pk>/close/", views.retro_close, name="retro_close"),
    # An escape card.
    path(
        "<int:pk>/escapes/<int:escape_id>/classify/",
        views_cards.retro_classify,
        name="retro_classify",
    ),
    path("<int:pk>/escapes/<int:escape_id>/whys/", views_cards.retro_why_add, name="retro_why_add"),
    path("<int:pk>/whys/<int:why_id>/edit/", views_cards.retro_why_edit, name="retro_why_edit"),
    path(
        "<int:pk>/whys/<int:why_id>/delete/", views_cards.retro_why_delete, name="retro_why_delete"
    ),
    path(
        "<int:pk>/whys/<int:why_id>/root-cause/",
        views_cards.retro_why_mark_root_cause,
        name="retro_why_mark_root_cause",
    ),
    path(
        "<int:pk>/whys/<int:why_id>/root-cause/clear/",
        views_cards.retro_why_unmark_root_cause,
        name="retro_why_unmark_root_cause",
    ),
    path(
        "<int:pk>/escapes/<int:escape_id>/actions/",
        views_cards.retro_action_add,
        name="retro_action_add",
    ),
    path(
        "<int:pk>/actions/<int:action_id>/edit/",
        views_cards.retro_action_edit,
        name="retro_action_edit",
    ),
    path(
        "<int:pk>/actions/<int:action_id>/delete/",
        views_cards.retro_action_delete,
        name="retro_action_delete",
    ),
    # Follow-through after the retro: an action without a ticket marked done here
    # (retros/views_follow.py).
    path("actions/<int:action_id>/done/", views_follow.action_done, name="action_done"),
    path("actions/<int:action_id>/reopen/", views_follow.action_reopen, name="action_reopen"),
    # Live facilitation: timer, focus, dot voting (retros/views_facilitation.py).
    path("<int:pk>/timer/start/", views_facilitation.retro_timer_start, name="retro_timer_start"),
    path("<int:pk>/timer/pause/", views_facilitation.retro_timer_pause, name="retro_timer_pause"),
    path(
        "<int:pk>/timer/resume/", views_facilitation.retro_timer_resume, name="retro_timer_resume"
    ),
    path(
        "<int:pk>/timer/extend/", views_facilitation.retro_timer_extend, name="retro_timer_extend"
    ),
    path("<int:pk>/timer/clear/", views_facilitation.retro_timer_clear, name="retro_timer_clear"),
    path("<int:pk>/focus/", views_facilitation.retro_focus, name="retro_focus"),
    path("<int:pk>/voting/open/", views_facilitation.retro_voting_open, name="retro_voting_open"),
    path(
        "<int:pk>/voting/close/", views_facilitation.retro_voting_close, name="retro_voting_close"
    ),
    path(
        "<int:pk>/escapes/<int:escape_id>/vote/", views_facilitation.retro_vote, name="retro_vote"
    ),
    path(
        "<int:pk>/escapes/<int:escape_id>/unvote/",
        views_facilitation.retro_unvote,
        name="retro_unvote",
    ),
    # The live board: its event stream (async) and presence strip (retros/stream.py).
    path("<int:pk>/stream/", stream.retro_stream, name="retro_stream"),
    path("<int:pk>/presence/", stream.retro_presence, name="retro_presence"),
]
