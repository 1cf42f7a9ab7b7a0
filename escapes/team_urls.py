from django.urls import path

from teams import views

urlpatterns = [
    path("", views.home, name="team_home"),  # placeholder until the team page lands
]
