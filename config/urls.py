from django.contrib import admin
from django.urls import include, path

from config import errors
from escapes import urls as escape_urls
from insights import urls as insight_urls
from retros import views_join as retros_join

urlpatterns = [
    path("accounts/", include("signin.urls")),
    path("settings/", include("notices.account_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("", include("teams.urls")),
    path("", include(insight_urls.urlpatterns)),
    path("", include(escape_urls.all_teams_urlpatterns)),
    path("t/<slug:team>/", include(insight_urls.team_urlpatterns)),
    path("t/<slug:team>/", include("teams.audit_urls")),
    path("t/<slug:team>/", include("notices.urls")),
    path("t/<slug:team>/", include(escape_urls.urlpatterns)),
    path("t/<slug:team>/", include("escapes.release_urls")),
    path("t/<slug:team>/retros/", include("retros.urls")),
    path("t/<slug:team>/tests/", include("evidence.urls")),
    path("t/<slug:team>/", include("evidence.urls_escape")),
    path("t/<slug:team>/members/", include("teams.member_urls")),
    # A retro's join link when its team lets newcomers sign up from it (retros/views_join.py).
    path("join/<str:key>/", retros_join.retro_join, name="retro_join"),
    path("t/<slug:team>/integrations/", include("integrations.urls_settings")),
    path("t/<slug:team>/integrations/", include("integrations.urls_push")),
    path("hooks/", include("integrations.urls_webhooks")),
]

# The refusal pages (config/errors.py); RefusalPagesMiddleware uses them in both DEBUG modes.
handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
