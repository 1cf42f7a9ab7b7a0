"""Retro pages: the list, the create form, the board and its POST endpoints, the summary.

Each board POST validates a form and calls one service. For htmx the answer is the region
that changed (an escape card; the whole board for gather, phase and close) with any error
rendered inside it, status 200 because htmx does not swap 4xx answers. Without JavaScript
the POST redirects back to the board and errors travel as messages.
"""

import threading
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from datetime import date
from typing import Any

import segno
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from escapes.forms import EscapeQuickForm
from escapes.models import Category, Escape
from retros import gather, presence, services
from retros.facilitation import timer_state
from retros.forms import (
    EscapePickForm,
    PhaseForm,
    RetroCreateForm,
    form_messages,
)
from retros.guide import GUIDE_PHASES, UNCLASSIFIED_PROMPT
from retros.markdown import retro_markdown
from retros.models import (
    PHASE_ORDER,
    FactKind,
    Phase,
    Retrospective,
    RootCauseKind,
    VotingState,
)
from retros.selectors import (
    earlier_open_actions,
    escapes_addable_to_retro,
    escapes_to_pick,
    get_retro_escape,
    get_retro_for_team,
    get_team_escape,
    my_votes,
    retro_board,
    retros_for_team,
    team_guide,
)
from retros.signals import summary_publishing, tracker_target
from retros.views_join import retro_join_url
from teams.decorators import team_view
from teams.models import Membership

BOARD = "retros/retro_detail.html"


@dataclass(frozen=True)
class Controls:
    """Which forms this member sees on this retro in its current phase."""

    facilitate: bool
    gather: bool  # the facilitator's Gather controls: add, keep and remove escapes
    classify: bool
    whys: bool
    actions: bool
    vote: bool = False
    # Whys: a facilitator or admin edits and deletes any; everyone else only their own
    # (`user_id` is compared with each why's author in the template).
    change_any_why: bool = False
    user_id: int | None = None
    # Gather for everyone who writes: propose escapes (retros/gather.py); facts on any card,
    # deleted by their author or (`change_any_fact`) a facilitator.
    propose: bool = False
    facts: bool = False
    change_any_fact: bool = False
    # Rendered once for everyone of this role (the card a stream pushes, retros/pushed.py):
    # what only one person sees is left out, and board.js puts in that person's own (their
    # votes, the controls on whys and facts they wrote, their CSRF token).
    shared: bool = False

    @classmethod
    def of(
        cls, membership: Membership, retro: Retrospective, *, shared: bool = False
    ) -> "Controls":
        is_open = not retro.is_closed
        write = membership.can_write and is_open
        facilitate = membership.can_facilitate and is_open
        return cls(
            facilitate=facilitate,
            gather=facilitate and retro.phase == Phase.GATHER,
            classify=write and retro.phase in services.CLASSIFY_PHASES,
            whys=write and retro.phase in services.WHY_PHASES,
            actions=write and retro.phase in services.ACTION_PHASES,
            vote=write and retro.voting == VotingState.OPEN,
            change_any_why=facilitate and retro.phase in services.WHY_PHASES,
            user_id=None if shared else membership.user_id,
            propose=write and retro.phase == Phase.GATHER,
            facts=write and retro.phase in gather.FACT_PHASES,
            change_any_fact=facilitate and retro.phase in gather.FACT_PHASES,
            shared=shared,
        )


@dataclass(frozen=True)
class ActionDraft:
    """What was typed into a refused action form, to put back into it."""

    kind: str
    stage_id: int | None
    owner_id: int | None
    title: str
    description: str
    due_date: date | None

    @classmethod
    def from_post(cls, data: Any) -> "ActionDraft":
        def as_int(value: str | None) -> int | None:
            return int(value) if value and value.isdigit() else None

        try:
            due = date.fromisoformat(data.get("due_date", ""))
        except ValueError:
            due = None
        return cls(
            kind=data.get("kind", ""),
            stage_id=as_int(data.get("stage")),
            owner_id=as_int(data.get("owner")),
            title=data.get("title", ""),
            description=data.get("description", ""),
            due_date=due,
        )


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _board_url(retro: Retrospective, anchor: str = "") -> str:
    url = reverse("retro_detail", kwargs={"team": retro.team.slug, "pk": retro.pk})
    return f"{url}#{anchor}" if anchor else url


def _attempt(write: Callable[[], object]) -> list[str]:
    """Run a service; its refusal as messages, or [] when it went through."""
    try:
        write()
    except ValidationError as exc:
        return list(exc.messages)
    return []


def _context(
    membership: Membership, retro: Retrospective, *, shared: bool = False, **extra: Any
) -> dict[str, Any]:
    """The board's context for `membership`; `shared`: for everyone of its role alike (no
    user's own votes or whys, see Controls.shared)."""
    controls = Controls.of(membership, retro, shared=shared)
    index = retro.phase_index
    context: dict[str, Any] = {
        "team": membership.team,
        "membership": membership,
        "retro": retro,
        "board": retro_board(retro, voter=None if shared else membership.user),
        "controls": controls,
        "timer": timer_state(retro),
        "phase_steps": [
            {"value": p.value, "label": p.label, "done": i < index} for i, p in enumerate(Phase)
        ],
        "prev_phase": Phase(PHASE_ORDER[index - 1]) if 0 < index < len(PHASE_ORDER) - 1 else None,
        "next_phase": Phase(PHASE_ORDER[index + 1]) if index < len(PHASE_ORDER) - 2 else None,
        "categories": Category.choices,
        "root_cause_kinds": RootCauseKind.choices,
        "addable_escapes": list(escapes_addable_to_retro(retro)) if controls.propose else [],
        "new_escape_form": new_escape_form(membership, retro) if controls.propose else None,
        "fact_kinds": FactKind.choices,
        # The leak bucket's guiding questions, in the phases that ask them (retros/guide.py).
        "guide": team_guide(membership.team) if retro.phase in GUIDE_PHASES else None,
        "unclassified_prompt": UNCLASSIFIED_PROMPT,
        # Where tickets will go, said before closing too; asked (one query) only if shown.
        "tracker": SimpleLazyObject(lambda: tracker_target(membership.team)),
        # The previous retros' open actions, shown first on an open retro's board (asked only
        # when the whole board is rendered).
        "earlier": SimpleLazyObject(lambda: earlier_open_actions(retro))
        if not retro.is_closed
        else None,
    }
    context.update(extra)
    return context


def new_escape_form(
    membership: Membership, retro: Retrospective, data: Any = None
) -> EscapeQuickForm:
    """The board's form for a new escape of the register; its release is the retro's."""
    return EscapeQuickForm(
        data,
        team=membership.team,
        auto_id="new-escape-%s",
        initial={"release": retro.release_id},
    )


def _card_response(
    request: HttpRequest,
    membership: Membership,
    retro: Retrospective,
    escape_id: int,
    errors: Iterable[str] = (),
    **extra: Any,
) -> HttpResponse:
    """The escape's card, plus the phase bar, overview and close region out of band (they
    count it)."""
    errors = list(errors)
    if not _is_htmx(request):
        for message in errors:
            messages.error(request, message)
        return redirect(_board_url(retro, f"escape-{escape_id}"))
    context = _context(membership, retro, error_escape_id=escape_id, card_errors=errors, **extra)
    return HttpResponse(_card_html(request, context, escape_id))


def _card_html(request: HttpRequest, context: dict[str, Any], escape_id: int) -> str:
    """The escape's card, and out of band what counts it: the overview and close region, and
    the phase bar, whose version tells board.js how far the person's own post has come (a
    refresh rendered before it must not put their change back)."""
    context["card"] = context["board"].card(escape_id)
    html = render_to_string(f"{BOARD}#escape_card", context, request)
    oob = {**context, "oob": True}
    html += render_to_string(f"{BOARD}#phase_bar", oob, request)
    html += render_to_string(f"{BOARD}#overview", oob, request)
    html += render_to_string(f"{BOARD}#close_region", oob, request)
    return html


def _board_response(
    request: HttpRequest,
    membership: Membership,
    retro: Retrospective,
    errors: Iterable[str] = (),
    *,
    close_errors: Iterable[str] = (),
    done: str = "",
) -> HttpResponse:
    errors, close_errors = list(errors), list(close_errors)
    if not _is_htmx(request):
        for message in [*errors, *close_errors]:
            messages.error(request, message)
        if done and not errors and not close_errors:
            messages.success(request, done)
        return redirect(_board_url(retro))
    context = _context(membership, retro, board_errors=errors, close_errors=close_errors)
    return render(request, f"{BOARD}#board", context)


def _board_page(
    request: HttpRequest, membership: Membership, retro: Retrospective, **extra: Any
) -> HttpResponse:
    """The whole board page, its join link included: the board itself, and a plain POST's
    refusal that must keep what was typed beside its field (a redirect would lose it)."""
    context = _context(membership, retro, **extra, **_join_context(request, retro))
    context["present"] = presence.strip(retro.pk, membership.team, membership.user, arriving=True)
    return render(request, BOARD, context)


def _escape_picked(
    request: HttpRequest,
    membership: Membership,
    pk: int,
    act: Callable[[Retrospective, Escape], object],
    *,
    done: Callable[[Escape], str] | None = None,
) -> HttpResponse:
    """`act` on the register's escape that EscapePickForm names, for this retro; the board
    after it, with the refusal or, without htmx, `done(escape)` as the message."""
    retro = get_retro_for_team(membership.team, pk)
    form = EscapePickForm(request.POST)
    if not form.is_valid():
        return _board_response(request, membership, retro, form_messages(form))
    escape = get_team_escape(membership.team, form.cleaned_data["escape"])
    errors = _attempt(lambda: act(retro, escape))
    return _board_response(request, membership, retro, errors, done=done(escape) if done else "")


# --- Pages.


@require_GET
@team_view()
def retro_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(
        request,
        "retros/retro_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "retros": retros_for_team(membership.team),
        },
    )


@require_http_methods(["GET", "POST"])
@team_view(facilitate=True)
def retro_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    team = membership.team
    form = RetroCreateForm(request.POST if request.method == "POST" else None, team=team)
    if request.method == "POST" and form.is_valid():
        try:
            retro = services.retro_create(
                team=team, facilitator=membership.user, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect(_board_url(retro))
    picked = set(request.POST.getlist("escapes"))
    return render(
        request,
        "retros/retro_create.html",
        {"team": team, "form": form, "escapes": escapes_to_pick(team), "picked": picked},
    )


@require_GET
@team_view()
def retro_detail(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        # The live board (static/js/board.js) re-fetches its regions: just #board, or with
        # ?escape=… only those escapes' cards and the counts beside them.
        escape_ids = _card_ids(request, retro)
        if escape_ids:
            response = HttpResponse(_cards_html(request, membership, retro, escape_ids))
        else:
            response = render(request, f"{BOARD}#board", _context(membership, retro))
    else:
        response = _board_page(request, membership, retro)
    patch_vary_headers(response, ["HX-Request"])
    return response


MAX_CARDS_PER_REFRESH = 5
CARDS_CACHE_SECONDS = 60
CSRF_SLOT = "LEAKSEALCSRFSLOT"  # where the requester's CSRF token goes in a shared render


def _card_ids(request: HttpRequest, retro: Retrospective) -> list[int]:
    """The escapes of `?escape=`; one no longer on the board is a 404 (re-fetch it all)."""
    values = request.GET.getlist("escape")
    if not values:
        return []
    if len(values) > MAX_CARDS_PER_REFRESH or not all(v.isdigit() for v in values):
        raise BadRequest("escape= takes up to five escape ids")
    return list(dict.fromkeys(int(v) for v in values))


def _cards_html(
    request: HttpRequest, membership: Membership, retro: Retrospective, escape_ids: list[int]
) -> str:
    """Some cards of the board, rendered once per version for everyone who sees them alike.

    After one change, every open board asks for the same cards at the same version. What
    differs between participants is what they may do (their controls), their own votes, and
    their CSRF token; the first two are part of the cache key, the token is put in after.
    """
    controls = Controls.of(membership, retro)
    mine = my_votes(retro, membership.user)
    variant = [
        *(int(flag) for flag in astuple(controls)),
        int(membership.can_facilitate),
        int(membership.can_write),  # a closed retro's Retry button (integrations) needs it
        # The close region says the team's rule; changing it does not bump the version.
        int(membership.team.close_requires_root_cause),
        sum(mine.values()),
        *(mine.get(escape_id, 0) for escape_id in escape_ids),
    ]
    key = "retro-cards:{}:{}:{}:{}".format(
        retro.pk, retro.version, ",".join(map(str, escape_ids)), ",".join(map(str, variant))
    )

    def render_cards() -> str:
        context = _context(membership, retro, csrf_token=CSRF_SLOT)
        context["cards"] = [context["board"].card(escape_id) for escape_id in escape_ids]
        return render_to_string(f"{BOARD}#board_cards", context)

    return _cached_once(key, render_cards).replace(CSRF_SLOT, get_token(request))


def shared_cards_html(retro: Retrospective, role: str, escape_ids: list[int]) -> str:
    """The same regions as `_cards_html`, for everyone whose role is `role`: no person's own
    votes, whys or CSRF token in it (CSRF_SLOT where the token goes), so one render serves
    every board of that role. What a stream pushes with a version (retros/pushed.py)."""
    membership = Membership(team=retro.team, role=role)  # a role, not a person
    context = _context(membership, retro, shared=True, csrf_token=CSRF_SLOT)
    context["cards"] = [context["board"].card(escape_id) for escape_id in escape_ids]
    return render_to_string(f"{BOARD}#board_cards", context)


_rendering: dict[str, threading.Lock] = {}
_rendering_guard = threading.Lock()


def _cached_once(key: str, render: Callable[[], str]) -> str:
    """The cached value of `key`, rendered by one thread of this process when missing.

    Fifty boards ask for the same cards within milliseconds of one another; without this
    each of them would find the cache empty and render the cards itself.
    """
    html = cache.get(key)
    if html is not None:
        return str(html)
    with _rendering_guard:
        lock = _rendering.setdefault(key, threading.Lock())
    try:
        with lock:
            html = cache.get(key)
            if html is None:
                html = render()
                cache.set(key, html, CARDS_CACHE_SECONDS)
            return str(html)
    finally:
        with _rendering_guard:
            _rendering.pop(key, None)


def _join_context(request: HttpRequest, retro: Retrospective) -> dict[str, Any]:
    """The board's absolute URL, to share, and its QR code as inline SVG.

    The join link is the board URL itself: members land on the board, outsiders get 404
    and signed-out people sign in first and come back to it. A team that lets newcomers join
    from it (`Team.join_link_sign_up`) shares `/join/<signed key>/` instead, which also offers
    an account and membership as a member (retros/views_join.py).
    """
    # When the team lets newcomers join from it, the link is an unguessable one of its own
    # (retros/views_join.py); else the board's URL.
    join_path = retro_join_url(retro) if retro.team.join_link_sign_up else _board_url(retro)
    join_url = request.build_absolute_uri(join_path)
    qr = segno.make(join_url, error="m")
    svg = qr.svg_inline(scale=4, light="#fff", svgclass="qr-code", title="QR code of the join link")
    # segno's own markup: paths only, no script and no style attribute (the CSP forbids both).
    return {
        "join_url": join_url,
        "join_qr": mark_safe(svg),  # noqa: S308
        "join_sign_up": retro.team.join_link_sign_up,
    }


@require_GET
@team_view()
def retro_summary(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    board = retro_board(retro)
    context = {
        "team": membership.team,
        "membership": membership,
        "retro": retro,
        "board": board,
        "totals": board.totals,
        # Where the summary is published outside Leakseal (Confluence), answered by
        # integrations/ through a signal: retros does not know it.
        "publishing": summary_publishing(retro),
    }
    return render(request, "retros/retro_summary.html", context)


@require_GET
@team_view()
def retro_summary_markdown(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    response = HttpResponse(
        retro_markdown(retro_board(retro)), content_type="text/markdown; charset=utf-8"
    )
    name = f"retro-{retro.pk}-{slugify(retro.title)[:60] or 'summary'}.md"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- Facilitation: escapes on the board, phases, closing.


@require_POST
@team_view(facilitate=True)
def retro_escape_add(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    return _escape_picked(
        request,
        membership,
        pk,
        lambda retro, escape: services.retro_add_escape(retro=retro, escape=escape),
    )


@require_POST
@team_view(facilitate=True)
def retro_escape_remove(
    request: HttpRequest, membership: Membership, pk: int, escape_id: int
) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    escape = get_retro_escape(retro, escape_id)
    errors = _attempt(lambda: services.retro_remove_escape(retro=retro, escape=escape))
    return _board_response(request, membership, retro, errors)


@require_POST
@team_view(facilitate=True)
def retro_advance(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    form = PhaseForm(request.POST)
    if not form.is_valid():
        return _board_response(request, membership, retro, form_messages(form))
    data = form.cleaned_data
    errors = _attempt(
        lambda: services.retro_advance(
            retro=retro, expected_phase=data["expected_phase"], to_phase=data["to_phase"]
        )
    )
    done = f"Moved on to {retro.get_phase_display()}."
    return _board_response(request, membership, retro, errors, done=done)


@require_POST
@team_view(facilitate=True)
def retro_reopen(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    form = PhaseForm(request.POST)
    if not form.is_valid():
        return _board_response(request, membership, retro, form_messages(form))
    expected = form.cleaned_data["expected_phase"]
    errors = _attempt(
        lambda: services.retro_reopen(retro=retro, expected_phase=expected, by=membership.user)
    )
    done = f"Back to {retro.get_phase_display()}."
    return _board_response(request, membership, retro, errors, done=done)


@require_POST
@team_view(facilitate=True)
def retro_close(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    retro = get_retro_for_team(membership.team, pk)
    errors = _attempt(lambda: services.retro_close(retro=retro, by=membership.user))
    return _board_response(
        request, membership, retro, close_errors=errors, done="The retrospective is closed."
    )
