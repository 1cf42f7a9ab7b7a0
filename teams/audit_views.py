"""The team's audit trail page and its CSV (team admins only).

The trail itself is the `audit` app's (model, `record`, selectors, CSV); this page lives in
teams because `team_view` does, and teams may import audit, not the other way round.
"""

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.csv_export import write_csv
from audit.selectors import action_choices, audit_entries
from teams.decorators import team_view
from teams.models import Membership

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, label="What", choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Every change"), *action_choices()]


def _action(request: HttpRequest) -> tuple[AuditFilterForm, str]:
    form = AuditFilterForm(request.GET)
    return form, (form.cleaned_data["action"] if form.is_valid() else "")


@require_GET
@team_view(admin=True)
def audit_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form, action = _action(request)
    page = Paginator(audit_entries(team=team, action=action), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    csv_url = reverse("audit_csv", kwargs={"team": team.slug})
    context = {
        "team": team,
        "membership": membership,
        "form": form,
        "page_obj": page,
        "action": action,
        "list_url": reverse("audit_list", kwargs={"team": team.slug}),
        "csv_url": f"{csv_url}?action={action}" if action else csv_url,
        "retention_days": settings.AUDIT_RETENTION_DAYS,
    }
    template = "teams/audit.html#results" if request.htmx else "teams/audit.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@require_GET
@team_view(admin=True)
def audit_csv(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    _, action = _action(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"leakseal-audit-{team.slug}-{timezone.now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    write_csv(response, audit_entries(team=team, action=action).iterator(chunk_size=1000))
    return response
