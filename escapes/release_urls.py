from django.urls import path

from escapes import release_views as views

urlpatterns = [
    path("releases/", views.release_list, name="release_list"),
    path("releases/new/", views.release_create, name="release_create"),
    path("releases/<int:pk>/", views.release_detail, name="release_detail"),
    path("releases/<int:pk>/catches/", views.release_catches, name="release_catches"),
    path("releases/<int:pk>/time/", views.release_time, name="release_time"),
    path("stages/", views.stage_list, name="stage_list"),
    path("stages/new/", views.stage_add, name="stage_add"),
    path("stages/<int:pk>/rename/", views.stage_rename, name="stage_rename"),
    path("stages/<int:pk>/move/", views.stage_move, name="stage_move"),
    path("stages/<int:pk>/delete/", views.stage_delete, name="stage_delete"),
    # The team's retro rules, a form on the stages page (the admins' settings page).
    path("retro-rules/", views.close_rule, name="close_rule"),
]
