from django.urls import path

from escapes import views

# Under t/<slug:team>/.
urlpatterns = [
    path("escapes/", views.escape_list, name="escape_list"),
    path("escapes/new/", views.escape_create_view, name="escape_create"),
    path("escapes/import/", views.escape_import, name="escape_import"),
    path(
        "escapes/import/template.csv",
        views.escape_import_template,
        name="escape_import_template",
    ),
    path("escapes/<int:pk>/", views.escape_detail, name="escape_detail"),
    path("escapes/<int:pk>/edit/", views.escape_update_view, name="escape_update"),
]

# At the root: the register of every team of the user, which the all-teams dashboard links to.
all_teams_urlpatterns = [
    path("escapes/", views.all_escape_list, name="all_escape_list"),
]
