from django.urls import path

from teams import tokens_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("tokens/", tokens_views.token_list, name="token_list"),
    path("tokens/new/", tokens_views.token_create, name="token_create"),
    path("tokens/<int:pk>/revoke/", tokens_views.token_revoke, name="token_revoke"),
]
