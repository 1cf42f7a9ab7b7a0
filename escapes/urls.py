from django.urls import path

from teams import views

urlpatterns = [
    path("escapes/", views.home, name="escape_list"),  # placeholder until the register lands
]
