from django.urls import path

from escapes import views

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
