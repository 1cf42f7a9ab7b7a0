from django.urls import path

from teams import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tokens/", views.home, name="token_list"),  # placeholder until the tokens page lands
]
