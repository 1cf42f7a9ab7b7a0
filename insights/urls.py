"""The numbers' pages: `urlpatterns` for every team of the user (mounted at the root) and
`team_urlpatterns` for one team (mounted under t/<slug:team>/): its home page and dashboard."""

from django.urls import path

from insights import team_views, views

urlpatterns = [
    path("dashboard/", views.all_dashboard, name="dashboard"),
    path("dashboard.csv", views.all_dashboard_csv, name="dashboard_csv"),
]

team_urlpatterns = [
    path("", team_views.team_home, name="team_home"),
    path("dashboard/", views.team_dashboard, name="team_dashboard"),
    path("dashboard.csv", views.team_dashboard_csv, name="team_dashboard_csv"),
]
