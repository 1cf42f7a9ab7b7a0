"""An escape's tests: the panel the retro board, the escape's page and the summary load by URL.

The board (templates/retros/retro_detail.html) holds a placeholder per escape card that htmx
fills from `escape_tests_panel` once the card is on screen; a live change of the card (from
the board's stream: a classification, a test attached or detached here) renders the card
again with its placeholder, which fetches the panel anew. retros never imports evidence.

Without JavaScript the placeholder is a link to the same URL, which then answers a whole page;
attaching and detaching redirect back to it.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from escapes.selectors import get_escape_for_team
from evidence import escape_tests
from teams.decorators import team_view
from teams.models import Membership

PANEL = "evidence/_escape_tests.html"
PAGE = "evidence/_escape_tests_page.html"
VIEWS = ("board", "page", "summary")


def _htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def _panel(
    request: HttpRequest, membership: Membership, pk: int, *, errors: list[str] | None = None
) -> HttpResponse:
    escape = get_escape_for_team(membership.team, pk)
    source = request.POST if request.method == "POST" else request.GET
    view = source.get("view", "board")
    if view not in VIEWS:
        view = "board"
    readonly = source.get("readonly") == "1" or view == "summary"
    panel = escape_tests.escape_tests(escape)
    context: dict[str, Any] = {
        "team": membership.team,
        "membership": membership,
        "escape": escape,
        "panel": panel,
        "view": view,
        "readonly": readonly,
        "can_change": membership.can_write and not readonly,
        "can_attach": membership.can_write and not readonly and panel.offer_attach,
        "setup_url": reverse("test_setup", kwargs={"team": membership.team.slug}),
        "panel_errors": errors or [],
    }
    return render(request, PANEL if _htmx(request) else PAGE, context)


@require_GET
@team_view()
def escape_tests_panel(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _panel(request, membership, pk)


def _change(
    request: HttpRequest, membership: Membership, pk: int, test_id: int, attach: bool
) -> HttpResponse:
    escape = get_escape_for_team(membership.team, pk)
    test = escape_tests.get_test_for_team(membership.team, test_id)
    service = escape_tests.escape_test_attach if attach else escape_tests.escape_test_detach
    try:
        service(escape=escape, test=test, by=membership.user)
        errors: list[str] = []
    except ValidationError as exc:
        errors = list(exc.messages)
    if _htmx(request):
        return _panel(request, membership, pk, errors=errors)
    for message in errors:
        messages.error(request, message)
    if not errors:
        messages.success(request, f"{test} {'attached' if attach else 'detached'}.")
    url = reverse("escape_tests", kwargs={"team": membership.team.slug, "pk": escape.pk})
    return redirect(url)


@require_POST
@team_view(write=True)
def escape_test_attach(
    request: HttpRequest, membership: Membership, pk: int, test_id: int
) -> HttpResponse:
    return _change(request, membership, pk, test_id, attach=True)


@require_POST
@team_view(write=True)
def escape_test_detach(
    request: HttpRequest, membership: Membership, pk: int, test_id: int
) -> HttpResponse:
    return _change(request, membership, pk, test_id, attach=False)
