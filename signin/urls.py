"""Under accounts/: Django's sign-in pages (ours for sign-in and reset), and single sign-on.

Every password page answers 404 when PASSWORD_SIGNIN is off: nobody sets or resets a password
that cannot be used.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from signin import views

gate = views.password_signin_required

urlpatterns = [
    path("login/", views.SigninView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/start/", views.SSOStart.as_view(), name="sso_start"),
    path("sso/callback/", views.SSOCallback.as_view(), name="sso_callback"),
    path(
        "password_change/",
        gate(auth_views.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "password_change/done/",
        gate(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    # The reset email's link starts with SITE_URL, never with the Host header a request sent.
    path("password_reset/", gate(views.PasswordResetView.as_view()), name="password_reset"),
    path(
        "password_reset/done/",
        gate(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        gate(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        gate(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]
