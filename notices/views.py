"""The team's delivery log (team admins): every notice sent for the team, or trying to be."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from notices.models import Channel, Notice, NoticeState
from notices.models_chat import ChatConnection
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
    # A chat notice's recipient is its connection's id: show the channel's name instead.
    chats = {
        str(pk): name
        for pk, name in ChatConnection.objects.filter(team=team).values_list("pk", "name")
    }
    rows = [(notice, _to(notice, chats)) for notice in page]
    context = {
        "team": team,
        "membership": membership,
        "page_obj": page,
        "rows": rows,
        "problems": problems,
    }
    template = "notices/delivery_log.html"
    return render(request, f"{template}#results" if request.htmx else template, context)  # type: ignore[attr-defined]


def _to(notice: Notice, chats: dict[str, str]) -> str:
    """Whom a notice went to, as the admin knows it: the address, or the chat channel's name."""
    where = notice.get_channel_display()
    name = notice.recipient if notice.channel == Channel.EMAIL else chats.get(notice.recipient)
    return f"{where}: {name}" if name else str(where)


@require_POST
@team_view(admin=True)
def notice_resend_view(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    notice = get_object_or_404(Notice, pk=pk, team=membership.team)
    notice_resend(notice=notice)
    return redirect("delivery_log", team=membership.team.slug)
