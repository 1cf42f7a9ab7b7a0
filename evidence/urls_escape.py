"""An escape's tests (the retro board's panel), under /t/<team>/escapes/<id>/tests/."""

from django.urls import URLPattern, path

from evidence import views_escape

urlpatterns: list[URLPattern] = [
    path("escapes/<int:pk>/tests/", views_escape.escape_tests_panel, name="escape_tests"),
    path(
        "escapes/<int:pk>/tests/<int:test_id>/attach/",
        views_escape.escape_test_attach,
        name="escape_test_attach",
    ),
    path(
        "escapes/<int:pk>/tests/<int:test_id>/detach/",
        views_escape.escape_test_detach,
        name="escape_test_detach",
    ),
]
