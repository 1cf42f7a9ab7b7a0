"""The members page and its actions, mounted under /t/<team>/members/ (team admins only)."""

from django.urls import path

from teams import views_members

urlpatterns = [
    path("", views_members.members, name="team_members"),
    path("invite/", views_members.invite, name="team_invite"),
    path("join-link/", views_members.join_link_setting, name="team_join_link_setting"),
    path("<int:pk>/role/", views_members.member_role, name="team_member_role"),
    path("<int:pk>/remove/", views_members.member_remove, name="team_member_remove"),
    path(
        "invitations/<int:pk>/resend/",
        views_members.invitation_resend_view,
        name="team_invitation_resend",
    ),
    path(
        "invitations/<int:pk>/revoke/",
        views_members.invitation_revoke_view,
        name="team_invitation_revoke",
    ),
]
