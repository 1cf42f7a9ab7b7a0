from django.contrib import admin

from retros.models import EscapeFact, PreventativeAction, Retrospective, Why


@admin.register(Retrospective)
class RetrospectiveAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "phase", "version", "created_at", "closed_at"]
    list_filter = ["team", "phase"]
    list_select_related = ["team"]


@admin.register(PreventativeAction)
class PreventativeActionAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "push_state", "external_key", "retro"]
    list_filter = ["push_state", "kind"]
    list_select_related = ["retro"]
    raw_id_fields = ["retro", "escape", "stage", "owner", "created_by"]


@admin.register(Why)
class WhyAdmin(admin.ModelAdmin):
    list_display = ["text", "retro", "root_cause_kind"]
    raw_id_fields = ["retro", "escape", "parent", "author"]


@admin.register(EscapeFact)
class EscapeFactAdmin(admin.ModelAdmin):
    list_display = ["text", "kind", "retro", "escape", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["retro", "escape"]
    raw_id_fields = ["retro", "escape", "author"]
