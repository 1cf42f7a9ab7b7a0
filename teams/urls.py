from django.urls import path

from teams import tokens_views, views, views_onboard

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/new/", views_onboard.team_new, name="team_new"),
    # Public: the link in an invitation's email (teams/invitations.py).
    path("invitations/<str:key>/", views_onboard.invitation_open, name="invitation_open"),
    path("tokens/", tokens_views.token_list, name="token_list"),
    path("tokens/new/", tokens_views.token_create, name="token_create"),
    path("tokens/<int:pk>/revoke/", tokens_views.token_revoke, name="token_revoke"),
]
