"""The team's delivery log (team admins): every notice sent for the team, or trying to be."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from notices.models import Notice, NoticeState
from notices.services import notice_resend
from teams.decorators import team_view
from teams.models import Membership

PAGE_SIZE = 50


@require_GET
@team_view(admin=True)
def delivery_log(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    notices = Notice.objects.filter(team=team).order_by("-created_at", "-pk")
    problems = notices.filter(state__in=[NoticeState.FAILED, NoticeState.INTERRUPTED]).count()
    page = Paginator(notices, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"team": team, "membership": membership, "page_obj": page, "problems": problems}
    return render(request, "notices/delivery_log.html", context)


@require_POST
@team_view(admin=True)
def notice_resend_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    notice = get_object_or_404(Notice, pk=pk, team=membership.team)
    notice_resend(notice=notice)
    return redirect("delivery_log", team=membership.team.slug)
