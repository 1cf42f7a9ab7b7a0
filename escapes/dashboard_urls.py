"""The dashboard's pages: `urlpatterns` for every team of the user (mounted at the root, with
the register of all those teams' escapes the numbers link to) and `team_urlpatterns` for one
team (mounted under t/<slug:team>/)."""

from django.urls import path

from escapes import dashboard_views, views

urlpatterns = [
    path("dashboard/", dashboard_views.all_dashboard, name="dashboard"),
    path("dashboard.csv", dashboard_views.all_dashboard_csv, name="dashboard_csv"),
    path("escapes/", views.all_escape_list, name="all_escape_list"),
]

team_urlpatterns = [
    path("dashboard/", dashboard_views.team_dashboard, name="team_dashboard"),
    path("dashboard.csv", dashboard_views.team_dashboard_csv, name="team_dashboard_csv"),
]
