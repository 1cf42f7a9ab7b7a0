"""Under /t/<team>/."""

from django.urls import path

from notices import views

urlpatterns = [
    path("notices/", views.delivery_log, name="delivery_log"),
    path("notices/<int:pk>/resend/", views.notice_resend_view, name="notice_resend"),
]
