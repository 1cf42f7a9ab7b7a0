from django.urls import path

from escapes import team_views

urlpatterns = [
    path("", team_views.team_home, name="team_home"),
]
