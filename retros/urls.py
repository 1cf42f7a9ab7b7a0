from django.urls import path

from teams import views

urlpatterns = [
    path("", views.home, name="retro_list"),  # placeholder until the retro pages land
]
