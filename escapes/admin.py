from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from escapes.models import Escape, PipelineStage, Release, StageCatch
from escapes.services import TIME_FIELDS, escape_delete, release_move


@admin.register(Escape)
class EscapeAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "category", "stage", "severity", "detected_at", "source"]
    list_filter = ["team", "category", "severity", "source"]
    search_fields = ["title", "component", "tracker_key"]
    list_select_related = ["team", "stage"]
    raw_id_fields = ["release", "stage", "created_by"]

    # An escape's times are edited in the app (its edit page or the API), where the change is
    # written to the team's audit trail; a deletion here goes through escape_delete, which is.
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return TIME_FIELDS if obj is not None else ()

    def delete_model(self, request: HttpRequest, obj: Escape) -> None:
        escape_delete(escape=obj, by=request.user)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Escape]) -> None:
        with transaction.atomic():
            for escape in queryset:
                escape_delete(escape=escape, by=request.user)  # type: ignore[arg-type]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "team", "released_at"]
    list_filter = ["team"]
    list_select_related = ["team"]

    # A corrected release time moves the windows between releases: it goes through
    # release_move, whose signal recounts the measured catches of it and its neighbours.
    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: Release, form: Any, change: bool) -> None:
        if not (change and "released_at" in form.changed_data):
            super().save_model(request, obj, form, change)
            return
        moved_to = obj.released_at
        obj.released_at = form.initial["released_at"]
        super().save_model(request, obj, form, change)
        user = request.user if request.user.is_authenticated else None
        release_move(release=obj, released_at=moved_to, by=user, via="Django admin")
        obj.refresh_from_db()


admin.site.register(PipelineStage)
admin.site.register(StageCatch)
