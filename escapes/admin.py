from django.contrib import admin

from escapes.models import Escape, PipelineStage, Release, StageCatch


@admin.register(Escape)
class EscapeAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "category", "stage", "severity", "detected_at", "source"]
    list_filter = ["team", "category", "severity", "source"]
    search_fields = ["title", "component", "tracker_key"]
    list_select_related = ["team", "stage"]
    raw_id_fields = ["release", "stage", "created_by"]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "team", "released_at"]
    list_filter = ["team"]
    list_select_related = ["team"]


admin.site.register(PipelineStage)
admin.site.register(StageCatch)
