"""The retro pages and the board's POST endpoints, through Django's test client.

Over 600 lines on purpose: every endpoint of the board is walked here with the personas of
docs/style.md (the happy path, the wrong method, a member allowed, an outsider refused), and the
board's conventions (htmx partials, errors inside the card) are easier to keep in one file.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from escapes.models import Category, Escape, Release
from retros import facilitation, services
from retros.models import (
    ActionKind,
    Phase,
    PreventativeAction,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Why,
)
from teams.services import team_close_rule_set
from tests.conftest import client_for
from tests.retros.conftest import add_action, add_root_cause, advance_to, make_escape

HX = {"HX-Request": "true"}


def url(name: str, retro: Retrospective, **kwargs) -> str:
    return reverse(name, kwargs={"team": retro.team.slug, "pk": retro.pk, **kwargs})


def board_state(retro: Retrospective) -> tuple:
    """Everything a board write could change, to compare before and after."""
    fresh = Retrospective.objects.get(pk=retro.pk)
    return (
        fresh.version,
        fresh.phase,
        fresh.closed_at,
        list(Why.objects.filter(retro=retro).values_list("pk", "text", "root_cause_kind")),
        list(PreventativeAction.objects.filter(retro=retro).values_list("pk", "title", "kind")),
        list(RetroEscape.objects.filter(retro=retro).values_list("escape_id", flat=True)),
        list(Escape.objects.order_by("pk").values_list("pk", "category", "stage_id")),
    )


# --- The walk through the pages.


def test_a_facilitator_and_a_member_walk_a_retro_to_closed(
    team, facilitator, member, escape, release, stages
):
    fred, mia = client_for(facilitator), client_for(member)

    response = fred.post(
        reverse("retro_create", kwargs={"team": team.slug}),
        {"title": "Payments retro", "release": release.pk},
    )
    retro = Retrospective.objects.get()
    assert response.status_code == 302
    assert response.headers["Location"] == url("retro_detail", retro)
    assert list(retro.escapes.all()) == [escape]

    def advance(to: str) -> None:
        retro.refresh_from_db()
        r = fred.post(url("retro_advance", retro), {"expected_phase": retro.phase, "to_phase": to})
        assert r.status_code == 302

    advance(Phase.CATEGORIZE)
    mia.post(
        url("retro_classify", retro, escape_id=escape.pk),
        {"category": Category.ENVIRONMENT_MISMATCH, "stage": stages[2].pk},
    )
    advance(Phase.WHYS)
    mia.post(url("retro_why_add", retro, escape_id=escape.pk), {"text": "Staging has no latency"})
    first = Why.objects.get()
    mia.post(
        url("retro_why_add", retro, escape_id=escape.pk),
        {"text": "Nobody owns environment parity", "parent": first.pk},
    )
    leaf = Why.objects.get(parent=first)
    mia.post(url("retro_why_mark_root_cause", retro, why_id=leaf.pk), {"kind": "process_failure"})
    advance(Phase.ACTIONS)
    mia.post(
        url("retro_action_add", retro, escape_id=escape.pk),
        {
            "kind": ActionKind.ENVIRONMENT_PARITY,
            "stage": stages[2].pk,
            "title": "Inject gateway latency in staging",
            "owner": member.pk,
            "due_date": (timezone.localdate() + timedelta(days=14)).isoformat(),
        },
    )
    response = fred.post(url("retro_close", retro), follow=True)

    retro.refresh_from_db()
    escape.refresh_from_db()
    leaf.refresh_from_db()
    assert retro.phase == Phase.CLOSED
    assert escape.category == Category.ENVIRONMENT_MISMATCH
    assert leaf.root_cause_kind == RootCauseKind.PROCESS_FAILURE
    assert PreventativeAction.objects.get().owner == member
    assert b"The retrospective is closed." in response.content
    summary = fred.get(url("retro_summary", retro))
    assert b"Inject gateway latency in staging" in summary.content
    assert b"Root cause: Process failure" in summary.content


def test_an_htmx_edit_answers_with_its_escape_card_only(whys_retro, escape, member):
    response = client_for(member).post(
        url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "Retry hid it"}, headers=HX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<article id="escape-{escape.pk}"')
    assert "Retry hid it" in html
    assert "<html" not in html
    # The phase bar (it carries the version) and the close region come along out of band.
    assert 'id="phase-bar" class="phase-bar" hx-swap-oob="true"' in html
    assert 'id="close-region" class="card close-region" hx-swap-oob="true"' in html
    assert Why.objects.get().text == "Retry hid it"


def test_an_htmx_refusal_is_rendered_in_the_card_with_status_200(whys_retro, escape, member):
    response = client_for(member).post(
        url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "x" * 1001}, headers=HX
    )
    assert response.status_code == 200
    assert "at most 1000 characters" in response.content.decode()
    assert not Why.objects.exists()


def test_without_htmx_a_refusal_redirects_back_with_a_message(whys_retro, escape, member):
    response = client_for(member).post(
        url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "   "}, follow=True
    )
    assert (
        response.redirect_chain[-1][0] == url("retro_detail", whys_retro) + f"#escape-{escape.pk}"
    )
    assert b"This field is required." in response.content
    assert not Why.objects.exists()


def test_closing_is_refused_in_the_close_region_naming_each_escape(
    whys_retro, escape, second_escape, facilitator, member, stages
):
    advance_to(whys_retro, Phase.ACTIONS)
    add_action(whys_retro, escape, member, stages[0])
    before = board_state(whys_retro)

    response = client_for(facilitator).post(url("retro_close", whys_retro), headers=HX)

    html = response.content.decode()
    start = html.index('id="close-region"')
    region = html[start : html.index("</section>", start)]
    assert response.status_code == 200
    # The team asks for root causes too (a new team's default): one message per escape.
    assert f"“{escape.title}” has no root cause yet" in region
    assert "“Coupon applied twice on retry” has no root cause and no preventative action" in region
    for title in (escape.title, "Coupon applied twice on retry"):
        assert region.count(title) == 1, "named once, not listed again"
    assert board_state(whys_retro) == before


def test_without_javascript_a_refused_close_comes_back_as_messages(
    whys_retro, escape, second_escape, facilitator
):
    advance_to(whys_retro, Phase.ACTIONS)

    response = client_for(facilitator).post(url("retro_close", whys_retro), follow=True)

    html = response.content.decode()
    assert response.redirect_chain[-1][0] == url("retro_detail", whys_retro)
    assert html.count("has no root cause and no preventative action yet") == 2
    assert Retrospective.objects.get(pk=whys_retro.pk).phase == Phase.ACTIONS


@pytest.mark.parametrize(
    ("strict", "rule"),
    [
        (True, "Closing needs a preventative action and a root cause for every escape."),
        (False, "Closing needs a preventative action for every escape."),
    ],
)
def test_the_close_region_says_the_teams_rule_and_what_each_escape_lacks(
    whys_retro, escape, second_escape, facilitator, member, stages, strict, rule
):
    team_close_rule_set(team=whys_retro.team, requires_root_cause=strict)
    advance_to(whys_retro, Phase.ACTIONS)
    add_action(whys_retro, escape, member, stages[0])

    html = client_for(facilitator).get(url("retro_detail", whys_retro)).content.decode()

    start = html.index('id="close-region"')
    region = html[start : html.index("</section>", start)]
    assert rule in region
    assert url("retro_close", whys_retro) in region
    lacks = "no root cause and no preventative action" if strict else "no preventative action"
    assert f"Coupon applied twice on retry</a>: {lacks}</li>" in region
    if strict:
        assert f"{escape.title}</a>: no root cause</li>" in region
    else:
        assert escape.title not in region


def test_the_close_region_says_when_nothing_is_missing(whys_retro, escape, second_escape, member):
    advance_to(whys_retro, Phase.ACTIONS)
    for e in (escape, second_escape):
        add_root_cause(whys_retro, e, member)
        add_action(whys_retro, e, member, e.team.stages.first())

    html = client_for(member).get(url("retro_detail", whys_retro)).content.decode()

    assert "Every escape has what closing needs." in html
    assert "Still missing" not in html


def test_a_stale_phase_click_is_refused_with_a_clear_message(retro, facilitator):
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)

    response = client_for(facilitator).post(
        url("retro_advance", retro),
        {"expected_phase": Phase.GATHER, "to_phase": Phase.CATEGORIZE},
        headers=HX,
    )

    assert "already in the Categorize phase" in response.content.decode()
    retro.refresh_from_db()
    assert retro.phase == Phase.CATEGORIZE


def test_a_stale_why_edit_shows_the_newer_text_and_keeps_mine(whys_retro, escape, member):
    why = services.why_add(retro=whys_retro, escape=escape, text="Original", author=member)
    services.why_edit(why=why, text="Their newer wording", expected_revision=1, by=member)

    response = client_for(member).post(
        url("retro_why_edit", whys_retro, why_id=why.pk),
        {"text": "My wording", "revision": 1},
        headers=HX,
    )

    html = response.content.decode()
    assert "It now reads: “Their newer wording”" in html
    assert 'value="My wording"' in html  # the form reopens with what I typed
    assert 'name="revision" value="2"' in html  # ...under the revision I have now seen
    why.refresh_from_db()
    assert why.text == "Their newer wording"


def test_the_board_carries_the_version_and_each_change_raises_it(whys_retro, escape, member):
    client = client_for(member)
    before = Retrospective.objects.get(pk=whys_retro.pk).version
    client.post(url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "One"}, headers=HX)
    client.post(url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "Two"}, headers=HX)
    after = Retrospective.objects.get(pk=whys_retro.pk).version
    assert after == before + 2
    html = client.get(url("retro_detail", whys_retro)).content.decode()
    # For the live board's script and the tests, as data; people are not shown it.
    assert f'id="phase-bar" class="phase-bar" data-version="{after}"' in html
    assert f"version {after}" not in html


# --- Controls by phase and role.


def test_a_viewer_sees_the_board_without_any_form(whys_retro, escape, member, viewer):
    services.why_add(retro=whys_retro, escape=escape, text="Visible to all", author=member)
    response = client_for(viewer).get(url("retro_detail", whys_retro))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Visible to all" in html
    assert "hx-post" not in html


def test_only_facilitators_see_the_phase_controls(whys_retro, member, facilitator):
    member_html = client_for(member).get(url("retro_detail", whys_retro)).content.decode()
    facilitator_html = client_for(facilitator).get(url("retro_detail", whys_retro)).content.decode()
    assert "Next: Actions" not in member_html
    assert "Next: Actions" in facilitator_html
    assert "Back to Categorize" in facilitator_html
    assert url("retro_why_add", whys_retro, escape_id=whys_retro.escapes.first().pk) in member_html


def test_forms_follow_the_phase(retro, escape, member):
    html = client_for(member).get(url("retro_detail", retro)).content.decode()
    assert url("retro_why_add", retro, escape_id=escape.pk) not in html
    assert url("retro_classify", retro, escape_id=escape.pk) not in html
    advance_to(retro, Phase.CATEGORIZE)
    html = client_for(member).get(url("retro_detail", retro)).content.decode()
    assert url("retro_classify", retro, escape_id=escape.pk) in html
    assert url("retro_action_add", retro, escape_id=escape.pk) not in html


def test_only_the_facilitator_sees_close_in_the_actions_phase(whys_retro, facilitator, member):
    advance_to(whys_retro, Phase.ACTIONS)
    assert (
        url("retro_close", whys_retro)
        in client_for(facilitator).get(url("retro_detail", whys_retro)).content.decode()
    )
    assert (
        url("retro_close", whys_retro)
        not in client_for(member).get(url("retro_detail", whys_retro)).content.decode()
    )


def test_a_closed_board_has_no_forms_left_but_marking_actions_done(closed_retro, owner):
    html = client_for(owner).get(url("retro_detail", closed_retro)).content.decode()
    posts = re.findall(r'hx-post="([^"]+)"', html)
    # Follow-through happens after the retro: an action without a ticket is marked done here.
    assert posts and all(post.endswith("/done/") for post in posts)
    assert "the board is read-only" in html


def test_user_text_is_escaped_on_the_board(whys_retro, escape, member):
    services.why_add(
        retro=whys_retro, escape=escape, text="<script>alert(1)</script>", author=member
    )
    html = client_for(member).get(url("retro_detail", whys_retro)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Anonymity.


def test_an_anonymous_retro_never_shows_why_authors(team, facilitator, escape, member):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    advance_to(retro, Phase.WHYS)
    services.why_add(retro=retro, escape=escape, text="Who said this?", author=member)
    # Even an author stored by some other path stays hidden.
    Why.objects.update(author=member)

    for user in (facilitator, member):
        client = client_for(user)
        for page in ("retro_detail", "retro_summary", "retro_summary_markdown"):
            text = client.get(url(page, retro)).content.decode()
            assert "Who said this?" in text
            assert "why-author" not in text, (user, page)
            assert f"— {member.username}" not in text, (user, page)
            assert f"({member.username})" not in text, (user, page)


def test_an_open_retro_shows_why_authors(whys_retro, escape, member, facilitator):
    services.why_add(retro=whys_retro, escape=escape, text="Said openly", author=member)
    client = client_for(facilitator)
    assert f"— {member.username}" in client.get(url("retro_detail", whys_retro)).content.decode()
    assert (
        f"({member.username})"
        in client.get(url("retro_summary_markdown", whys_retro)).content.decode()
    )


# --- Summary and Markdown.


def test_the_markdown_download(closed_retro, escape, second_escape, member):
    # The closed retro's two root causes, one of each kind.
    Why.objects.filter(retro=closed_retro, escape=second_escape).update(
        root_cause_kind=RootCauseKind.PROCESS_FAILURE
    )
    Escape.objects.filter(pk=escape.pk).update(title="Totals *bold* <b>tag</b>")

    response = client_for(member).get(url("retro_summary_markdown", closed_retro))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="retro-{closed_retro.pk}-release-2026111-retro.md"'
    )
    text = response.content.decode()
    assert text.startswith("# Retrospective: Release 2026.11.1 retro\n")
    assert "- Escapes: 2\n" in text
    assert "- Preventative actions: 2\n" in text
    assert "- Root causes: 1 process failure, 1 automation shortfall\n" in text
    assert "## 1. Totals \\*bold\\* \\<b>tag\\</b>\n" in text
    assert "- Category: Coverage Gap\n" in text
    assert "- Stage that should have caught it: Integration\n" in text
    assert "- No test covered it (mia) **Root cause: Automation shortfall**\n" in text
    assert (
        "- **Add a contract test for the gateway** — New test at a stage; stage Integration; "
        "owner mia; due not set; tracker: Not pushed — No tracker was connected when the "
        "retrospective closed.\n"
    ) in text
    assert "<" not in text.replace("\\<", ""), "no raw HTML: every < is escaped"
    assert "- Dot voting: not used\n" in text
    assert "- Votes:" not in text


def test_the_markdown_keeps_dotted_versions_as_typed_and_counts_each_escapes_votes(
    team, facilitator, member, owner, stages
):
    release = Release.objects.create(
        team=team, version="2026.12.0", released_at=timezone.now() - timedelta(days=3)
    )
    basket = make_escape(team, title="2026.12.0 drops the basket on retry", release=release)
    coupon = make_escape(team, title="Coupon code_field trimmed", release=release)
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="2026.12.0 retro", release=release
    )
    advance_to(retro, Phase.WHYS)
    facilitation.voting_open(retro=retro, votes_per_person=3)
    for voter, escape in ((member, coupon), (member, coupon), (owner, coupon), (owner, basket)):
        facilitation.vote_cast(retro=retro, escape=escape, voter=voter)
    facilitation.voting_close(retro=retro)
    advance_to(retro, Phase.ACTIONS)
    for e in (basket, coupon):
        add_root_cause(retro, e, member, text="Only 2026.11 data had the retry_count column")
        add_action(retro, e, member, stages[0])
    services.retro_close(retro=retro, by=facilitator)

    text = client_for(member).get(url("retro_summary_markdown", retro)).content.decode()

    assert text.startswith("# Retrospective: 2026.12.0 retro\n")
    assert "Release: 2026.12.0 ·" in text
    # Most votes first, as on the board once voting closed.
    assert text.index("## 1. Coupon code_field trimmed\n") < text.index(
        "## 2. 2026.12.0 drops the basket on retry\n"
    )
    coupon_part, basket_part = text.split("## 2. ")[0].split("## 1. ")[1], text.split("## 2. ")[1]
    assert "- Votes: 3\n" in coupon_part
    assert "- Votes: 1\n" in basket_part
    assert "- Dot voting: 3 votes per person, 4 cast (closed)\n" in text
    assert "- Only 2026.11 data had the retry_count column (mia)" in text
    assert "\\" not in text, "nothing here needs a backslash"

    html = client_for(member).get(url("retro_summary", retro)).content.decode()
    assert "Votes cast (3 per person)" in html
    assert '<dt>Votes</dt><dd class="votes">3</dd>' in html
    assert '<dt>Votes</dt><dd class="votes">1</dd>' in html


def test_the_summary_page_shows_totals_and_each_escape(closed_retro, viewer, escape):
    response = client_for(viewer).get(url("retro_summary", closed_retro))
    html = response.content.decode()
    assert response.status_code == 200
    assert escape.title in html
    assert "Coverage Gap" in html
    assert "Escapes without an action" in html
    assert url("retro_summary_markdown", closed_retro) in html
    assert "Votes" not in html, "no dot voting in this retro: nothing to count"


# --- Creating.


def test_the_create_form_offers_the_teams_escapes(team, facilitator, escape, other_team):
    make_escape(other_team, title="Another team's escape")
    response = client_for(facilitator).get(reverse("retro_create", kwargs={"team": team.slug}))
    html = response.content.decode()
    assert response.status_code == 200
    assert escape.title in html
    assert "Another team&#x27;s escape" not in html and "Another team's escape" not in html


def test_an_empty_create_form_shows_what_is_missing(team, facilitator):
    response = client_for(facilitator).post(reverse("retro_create", kwargs={"team": team.slug}))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Retrospective.objects.exists()


def test_creating_without_escapes_shows_the_problem(team, facilitator):
    response = client_for(facilitator).post(
        reverse("retro_create", kwargs={"team": team.slug}), {"title": "Nothing"}
    )
    assert response.status_code == 200
    assert "Pick a release or at least one escape." in response.content.decode()
    assert not Retrospective.objects.exists()


def test_creating_from_chosen_escapes(team, facilitator, escape, second_escape):
    response = client_for(facilitator).post(
        reverse("retro_create", kwargs={"team": team.slug}),
        {"title": "Chosen", "escapes": [second_escape.pk], "anonymous": "on"},
    )
    retro = Retrospective.objects.get()
    assert response.status_code == 302
    assert list(retro.escapes.all()) == [second_escape]
    assert retro.anonymous is True
    assert retro.facilitator == facilitator


def test_an_escape_of_another_team_cannot_be_chosen(team, facilitator, other_team):
    theirs = make_escape(other_team)
    response = client_for(facilitator).post(
        reverse("retro_create", kwargs={"team": team.slug}),
        {"title": "Sneaky", "escapes": [theirs.pk]},
    )
    assert response.status_code == 200
    assert not Retrospective.objects.exists()


def test_the_list_shows_the_teams_retros(retro, member, outsider, other_team):
    theirs = services.retro_create(
        team=other_team,
        facilitator=outsider,
        title="Their retro",
        escapes=[make_escape(other_team)],
    )
    html = client_for(member).get(reverse("retro_list", kwargs={"team": "checkout"})).content
    assert retro.title.encode() in html
    assert theirs.title.encode() not in html
    assert b"New retrospective" not in html  # members do not start retros


# --- Permissions, endpoint by endpoint.


@pytest.fixture
def full_board(retro, escape, member, stages, team):
    """A retro in the Actions phase with one why and one action: a target for every POST."""
    advance_to(retro, Phase.ACTIONS)
    why = services.why_add(retro=retro, escape=escape, text="A why", author=member)
    action = add_action(retro, escape, member, stages[0])
    spare = make_escape(team, title="Spare escape")
    return retro, escape, why, action, spare


def post_endpoints(board: tuple, member, stage) -> list[tuple[str, str, dict]]:
    """(kind, url, valid data) of every POST endpoint; kind is facilitate or write."""
    retro, escape, why, action, spare = board
    action_data = {
        "kind": ActionKind.NEW_TEST,
        "stage": stage.pk,
        "title": "Another guardrail",
        "owner": member.pk,
    }
    return [
        ("facilitate", url("retro_escape_add", retro), {"escape": spare.pk}),
        ("facilitate", url("retro_escape_remove", retro, escape_id=escape.pk), {}),
        ("facilitate", url("retro_advance", retro), {"expected_phase": retro.phase}),
        ("facilitate", url("retro_reopen", retro), {"expected_phase": retro.phase}),
        ("facilitate", url("retro_close", retro), {}),
        (
            "write",
            url("retro_classify", retro, escape_id=escape.pk),
            {"category": Category.FLAKINESS, "stage": stage.pk},
        ),
        ("write", url("retro_why_add", retro, escape_id=escape.pk), {"text": "Another"}),
        ("write", url("retro_why_edit", retro, why_id=why.pk), {"text": "Edited", "revision": 1}),
        (
            "write",
            url("retro_why_mark_root_cause", retro, why_id=why.pk),
            {"kind": RootCauseKind.PROCESS_FAILURE},
        ),
        ("write", url("retro_why_unmark_root_cause", retro, why_id=why.pk), {}),
        ("write", url("retro_action_add", retro, escape_id=escape.pk), action_data),
        ("write", url("retro_action_edit", retro, action_id=action.pk), action_data),
        ("write", url("retro_action_delete", retro, action_id=action.pk), {}),
        ("write", url("retro_why_delete", retro, why_id=why.pk), {}),
    ]


def get_pages(retro) -> list[str]:
    return [
        reverse("retro_list", kwargs={"team": retro.team.slug}),
        reverse("retro_create", kwargs={"team": retro.team.slug}),
        url("retro_detail", retro),
        url("retro_summary", retro),
        url("retro_summary_markdown", retro),
    ]


def test_members_may_not_facilitate_and_viewers_may_not_write(full_board, member, viewer, stages):
    retro = full_board[0]
    before = board_state(retro)
    for kind, endpoint, data in post_endpoints(full_board, member, stages[0]):
        assert client_for(viewer).post(endpoint, data, headers=HX).status_code == 403, endpoint
        if kind == "facilitate":
            assert client_for(member).post(endpoint, data, headers=HX).status_code == 403, endpoint
    assert client_for(member).get(get_pages(retro)[1]).status_code == 403  # create form
    assert client_for(viewer).get(get_pages(retro)[1]).status_code == 403
    assert board_state(retro) == before


def test_members_may_write_on_the_board(full_board, member, stages):
    retro = full_board[0]
    for kind, endpoint, data in post_endpoints(full_board, member, stages[0]):
        if kind == "write":
            version = Retrospective.objects.get(pk=retro.pk).version
            response = client_for(member).post(endpoint, data, headers=HX)
            assert response.status_code == 200, endpoint
            assert 'class="errors' not in response.content.decode(), endpoint
            assert Retrospective.objects.get(pk=retro.pk).version == version + 1, endpoint


def test_outsiders_get_404_everywhere(full_board, outsider, stages, member):
    retro = full_board[0]
    before = board_state(retro)
    client = client_for(outsider)
    for _, endpoint, data in post_endpoints(full_board, member, stages[0]):
        assert client.post(endpoint, data, headers=HX).status_code == 404, endpoint
    for page in get_pages(retro):
        assert client.get(page).status_code == 404, page
    assert board_state(retro) == before


def test_another_teams_retro_is_404_under_my_team(other_team, outsider, owner):
    theirs = services.retro_create(
        team=other_team, facilitator=outsider, title="Theirs", escapes=[make_escape(other_team)]
    )
    client = client_for(owner)
    mine = reverse("retro_detail", kwargs={"team": "checkout", "pk": theirs.pk})
    assert client.get(mine).status_code == 404
    assert client.get(mine + "summary.md").status_code == 404
    assert client.post(mine + "close/").status_code == 404


def test_ids_from_another_retro_are_404(full_board, team, facilitator, owner, member, stages):
    retro, escape, why, action, spare = full_board
    other = services.retro_create(team=team, facilitator=facilitator, title="B", escapes=[spare])
    advance_to(other, Phase.ACTIONS)
    client = client_for(owner)
    assert (
        client.post(
            url("retro_why_edit", other, why_id=why.pk), {"text": "x", "revision": 1}
        ).status_code
        == 404
    )
    assert client.post(url("retro_action_delete", other, action_id=action.pk)).status_code == 404
    assert (
        client.post(url("retro_why_add", other, escape_id=escape.pk), {"text": "x"}).status_code
        == 404
    )
    assert (
        client.post(
            url("retro_why_add", retro, escape_id=escape.pk), {"text": "x", "parent": 999999}
        ).status_code
        == 404
    )
    assert Why.objects.count() == 1
    assert PreventativeAction.objects.filter(pk=action.pk).exists()


def test_the_wrong_method_is_405(full_board, owner, member, stages):
    retro = full_board[0]
    client = client_for(owner)
    for _, endpoint, _data in post_endpoints(full_board, member, stages[0]):
        assert client.get(endpoint).status_code == 405, endpoint
    for page in get_pages(retro):
        if "/new/" not in page:
            assert client.post(page).status_code == 405, page
    assert client.put(get_pages(retro)[1]).status_code == 405


def test_a_closed_retro_refuses_every_write_endpoint(closed_retro, owner, member, stages, team):
    escape = closed_retro.escapes.first()
    why = Why.objects.filter(retro=closed_retro).first()
    action = PreventativeAction.objects.filter(retro=closed_retro).first()
    spare = make_escape(team, title="Spare escape")
    before = board_state(closed_retro)
    client = client_for(owner)
    board = (closed_retro, escape, why, action, spare)
    for _, endpoint, data in post_endpoints(board, member, stages[0]):
        response = client.post(endpoint, data, headers=HX)
        assert response.status_code == 200, endpoint
        assert "closed; it is read-only" in response.content.decode(), endpoint
    assert board_state(closed_retro) == before


def test_anonymous_users_are_sent_to_sign_in(retro, client):
    response = client.get(url("retro_detail", retro))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


# --- Bounded queries.


def _board_of(team, facilitator, member, *, escapes: int, whys: int) -> Retrospective:
    items = [make_escape(team, title=f"Escape {i}") for i in range(escapes)]
    retro = services.retro_create(team=team, facilitator=facilitator, title="Big", escapes=items)
    advance_to(retro, Phase.ACTIONS)
    stage = team.stages.first()
    for e in items:
        parent = None
        for i in range(whys):
            # Half the whys branch off the first one, half chain: both tree shapes.
            why = services.why_add(
                retro=retro, escape=e, parent=parent, text=f"why {i}", author=member
            )
            parent = why if i % 2 == 0 else parent
        add_action(retro, e, member, stage)
    return retro


@pytest.mark.parametrize(("escapes", "whys"), [(2, 3), (10, 10)])
def test_the_board_needs_a_bounded_number_of_queries(
    team, facilitator, member, escapes, whys, django_assert_max_num_queries
):
    retro = _board_of(team, facilitator, member, escapes=escapes, whys=whys)
    client = client_for(member)
    # 13: the close region says where tickets will go (the team's tracker connection), the
    # facts of every card come in one query, and the panel of earlier retros' open actions
    # in one more.
    with django_assert_max_num_queries(13):
        response = client.get(url("retro_detail", retro))
    assert response.content.decode().count('class="card escape-card"') == escapes
    with django_assert_max_num_queries(11):
        client.get(url("retro_summary_markdown", retro))
    with django_assert_max_num_queries(11):
        client.get(url("retro_summary", retro))


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_needs_a_bounded_number_of_queries(
    team, facilitator, member, count, django_assert_max_num_queries
):
    escape = make_escape(team)
    for i in range(count):
        services.retro_create(team=team, facilitator=facilitator, title=f"R{i}", escapes=[escape])
    client = client_for(member)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("retro_list", kwargs={"team": team.slug}))
    assert response.content.decode().count("<tr>") == count + 1


# --- Facilitation endpoints.


def test_a_facilitator_gathers_escapes_on_the_board(retro, team, facilitator, escape):
    extra = make_escape(team, title="Found in gather")
    client = client_for(facilitator)
    html = client.get(url("retro_detail", retro)).content.decode()
    offered = re.search(r'<select id="add-escape".*?</select>', html, re.S)
    assert offered is not None
    assert f'<option value="{extra.pk}">' in offered.group()
    assert f'<option value="{escape.pk}">' not in offered.group()  # already on the board

    response = client.post(url("retro_escape_add", retro), {"escape": extra.pk}, headers=HX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="board"')
    assert f'id="escape-{extra.pk}"' in response.content.decode()

    client.post(url("retro_escape_remove", retro, escape_id=escape.pk), headers=HX)
    assert list(retro.escapes.order_by("pk")) == [
        e for e in Escape.objects.order_by("pk") if e.pk != escape.pk
    ]


def test_an_escape_of_another_team_cannot_be_gathered(retro, facilitator, other_team):
    theirs = make_escape(other_team)
    response = client_for(facilitator).post(url("retro_escape_add", retro), {"escape": theirs.pk})
    assert response.status_code == 404
    assert not retro.escapes.filter(pk=theirs.pk).exists()


def test_a_facilitator_steps_back_a_phase(whys_retro, facilitator):
    response = client_for(facilitator).post(
        url("retro_reopen", whys_retro), {"expected_phase": Phase.WHYS}, follow=True
    )
    whys_retro.refresh_from_db()
    assert whys_retro.phase == Phase.CATEGORIZE
    assert b"Back to Categorize." in response.content


def test_a_refused_action_keeps_what_was_typed(whys_retro, escape, member, stages):
    response = client_for(member).post(
        url("retro_action_add", whys_retro, escape_id=escape.pk),
        {"kind": ActionKind.NEW_TEST, "stage": stages[1].pk, "title": "Keep me", "owner": ""},
        headers=HX,
    )
    html = response.content.decode()
    assert "Every preventative action needs an owner." in html
    assert 'value="Keep me"' in html
    assert f'<option value="{stages[1].pk}" selected>' in html
    assert not PreventativeAction.objects.exists()


def test_a_refused_action_is_answered_beside_its_button(whys_retro, escape, member, owner):
    """Issue 10, point 6: "New test at a stage" without a stage used to fail with the error at
    the top of the card, far above the button that was pressed."""
    response = client_for(member).post(
        url("retro_action_add", whys_retro, escape_id=escape.pk),
        {"kind": ActionKind.NEW_TEST, "stage": "", "title": "A test", "owner": owner.pk},
        headers=HX,
    )
    html = response.content.decode()
    form_start = html.index(url("retro_action_add", whys_retro, escape_id=escape.pk))
    error = html.index('class="errors card-errors" role="alert"')
    button = html.index(">Add action</button>")
    assert form_start < error < button
    assert html.count('class="errors card-errors"') == 1
    assert not PreventativeAction.objects.exists()


def test_a_refusal_whose_form_is_gone_is_shown_at_the_top_of_the_card(whys_retro, escape, member):
    """A why refused because the retro stepped back: the why form is no longer on the card."""
    services.retro_reopen(retro=whys_retro, expected_phase=Phase.WHYS)
    response = client_for(member).post(
        url("retro_why_add", whys_retro, escape_id=escape.pk), {"text": "Late"}, headers=HX
    )
    html = response.content.decode()
    assert html.count('class="errors card-errors"') == 1
    assert "Late" not in html.split('class="errors card-errors"')[0]


def test_an_action_is_edited_from_its_card(whys_retro, escape, member, owner, stages):
    action = add_action(whys_retro, escape, member, stages[0])
    response = client_for(member).post(
        url("retro_action_edit", whys_retro, action_id=action.pk),
        {
            "kind": ActionKind.PROCESS_CHANGE,
            "stage": "",
            "title": "Review timeouts each sprint",
            "owner": owner.pk,
        },
        headers=HX,
    )
    assert "Review timeouts each sprint" in response.content.decode()
    action.refresh_from_db()
    assert (action.kind, action.stage, action.owner) == (ActionKind.PROCESS_CHANGE, None, owner)
