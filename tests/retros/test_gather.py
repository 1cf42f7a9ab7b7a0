"""Contributing in Gather (issue 10, point 3): every member proposes or records escapes, the
facilitator keeps or removes them, and anyone adds facts to an escape (retros/gather.py)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escapes.models import Escape
from retros import events, gather, services
from retros.models import EscapeFact, FactKind, Phase, RetroEscape, Retrospective
from teams.models import Role
from teams.services import api_token_create, membership_set
from tests.conftest import client_for
from tests.retros.conftest import advance_to, make_escape
from tests.retros.test_views import HX, url


def board(user, retro: Retrospective) -> str:
    response = client_for(user).get(url("retro_detail", retro))
    assert response.status_code == 200
    return response.content.decode()


def item(retro: Retrospective, escape: Escape) -> RetroEscape:
    return RetroEscape.objects.get(retro=retro, escape=escape)


def published(callbacks) -> list[int | None]:
    """The escape each version published on commit said it changed (None: the whole board)."""
    return [
        cb.keywords["escape_id"]
        for cb in callbacks
        if getattr(cb, "func", None) is events.publish_version
    ]


def new_escape_data(**overrides) -> dict:
    detected = timezone.localtime() - timedelta(hours=2)
    return {
        "title": "Search returns stale prices",
        "detected_at": detected.strftime("%Y-%m-%dT%H:%M"),
        "severity": "high",
        **overrides,
    }


@pytest.fixture
def engineer2(team):
    user = User.objects.create_user(username="noah", password="pw-noah")
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


# --- Proposing and keeping escapes (services).


def test_a_members_escape_is_proposed_and_a_facilitators_is_kept(retro, team, member, facilitator):
    theirs, mine = make_escape(team, title="From the register"), make_escape(team)
    proposed = gather.retro_propose_escape(retro=retro, escape=theirs, by=member)
    kept = gather.retro_propose_escape(retro=retro, escape=mine, by=facilitator)
    assert (proposed.proposed, proposed.proposed_by) == (True, member)
    assert (kept.proposed, kept.proposed_by) == (False, None)
    assert proposed.position < kept.position  # each goes last on the board


def test_an_anonymous_retro_does_not_store_who_proposed(team, facilitator, member, escape):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    proposed = gather.retro_propose_escape(retro=retro, escape=make_escape(team), by=member)
    assert (proposed.proposed, proposed.proposed_by) == (True, None)
    assert "Proposed by" not in board(facilitator, retro)
    assert member.username not in board(facilitator, retro)


def test_proposing_is_for_writers_in_gather_with_the_teams_escapes(
    retro, team, member, viewer, other_team, escape
):
    with pytest.raises(PermissionDenied):
        gather.retro_propose_escape(retro=retro, escape=make_escape(team), by=viewer)
    with pytest.raises(ValidationError, match="already in this retrospective"):
        gather.retro_propose_escape(retro=retro, escape=escape, by=member)
    with pytest.raises(ValidationError, match="Unknown escape"):
        gather.retro_propose_escape(retro=retro, escape=make_escape(other_team), by=member)
    advance_to(retro, Phase.CATEGORIZE)
    with pytest.raises(ValidationError, match="Gather phase"):
        gather.retro_propose_escape(retro=retro, escape=make_escape(team), by=member)


def test_a_new_escape_joins_the_register_and_the_board_or_nothing_is_written(retro, team, member):
    detected = timezone.now() - timedelta(hours=1)
    escape = gather.retro_new_escape(
        retro=retro, data={"title": "New one", "detected_at": detected}, by=member
    )
    assert escape.team == team and escape.created_by == member
    assert item(retro, escape).proposed
    count = Escape.objects.count()
    future = timezone.now() + timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        gather.retro_new_escape(
            retro=retro, data={"title": "Later", "detected_at": future}, by=member
        )
    assert refused.value.message_dict["detected_at"] == ["This time is in the future."]
    assert Escape.objects.count() == count


def test_keeping_a_proposal_touches_only_its_card(
    retro, team, member, django_capture_on_commit_callbacks
):
    escape = make_escape(team)
    gather.retro_propose_escape(retro=retro, escape=escape, by=member)
    with django_capture_on_commit_callbacks() as callbacks:
        gather.retro_keep_escape(retro=retro, escape=escape)
    assert not item(retro, escape).proposed
    assert published(callbacks) == [escape.pk]


def test_a_proposal_reaches_every_board_as_a_whole_board_change(
    retro, team, member, django_capture_on_commit_callbacks
):
    before = Retrospective.objects.get(pk=retro.pk).version
    with django_capture_on_commit_callbacks() as callbacks:
        gather.retro_propose_escape(retro=retro, escape=make_escape(team), by=member)
    assert published(callbacks) == [None]
    assert Retrospective.objects.get(pk=retro.pk).version == before + 1


def test_gather_is_not_left_while_a_proposal_waits(retro, team, member):
    escape = make_escape(team, title="Waiting one")
    gather.retro_propose_escape(retro=retro, escape=escape, by=member)
    with pytest.raises(ValidationError, match="Keep or remove each proposed escape") as refused:
        services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    assert "“Waiting one”" in refused.value.messages[0]
    assert Retrospective.objects.get(pk=retro.pk).phase == Phase.GATHER
    gather.retro_keep_escape(retro=retro, escape=escape)
    services.retro_advance(retro=retro, expected_phase=Phase.GATHER, to_phase=Phase.CATEGORIZE)
    assert retro.phase == Phase.CATEGORIZE


def test_removing_a_proposal_takes_it_off_the_board_not_out_of_the_register(retro, team, member):
    escape = gather.retro_new_escape(
        retro=retro,
        data={"title": "Brand new", "detected_at": timezone.now() - timedelta(hours=1)},
        by=member,
    )
    gather.fact_add(retro=retro, escape=escape, kind=FactKind.TIMELINE, text="t", author=member)
    services.retro_remove_escape(retro=retro, escape=escape)
    assert not RetroEscape.objects.filter(retro=retro, escape=escape).exists()
    assert Escape.objects.filter(pk=escape.pk).exists()
    assert not EscapeFact.objects.filter(escape=escape).exists()  # its facts went with it


# --- Facts (services).


@pytest.mark.parametrize(
    ("kind", "link", "error"),
    [
        (FactKind.LOG, "", "A log is a link: enter its web address"),
        (FactKind.CI_RUN, "ci.example.com/runs/42", "starts with http:// or https://"),
        (FactKind.DASHBOARD, "javascript:alert(1)", "starts with http:// or https://"),
        (FactKind.LINK, "ftp://files.example.com/dump", "starts with http:// or https://"),
        (FactKind.TIMELINE, "https://exa mple.com/", "starts with http:// or https://"),
    ],
)
def test_a_facts_link_is_a_web_address(retro, escape, member, kind, link, error):
    with pytest.raises(ValidationError) as refused:
        gather.fact_add(retro=retro, escape=escape, kind=kind, text="x", url=link, author=member)
    assert error in refused.value.message_dict["url"][0]
    assert not EscapeFact.objects.exists()


def test_facts_are_added_with_their_author_in_gather_categorize_and_whys(
    retro, escape, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        note = gather.fact_add(
            retro=retro,
            escape=escape,
            kind=FactKind.TIMELINE,
            text="  Alerts fired at 14:02  ",
            author=member,
        )
    assert (note.text, note.url, note.author) == ("Alerts fired at 14:02", "", member)
    assert published(callbacks) == [escape.pk]
    advance_to(retro, Phase.WHYS)
    log = gather.fact_add(
        retro=retro,
        escape=escape,
        kind=FactKind.LOG,
        text="Gateway timeouts",
        url="http://logs.example.com/q?id=1",
        author=member,
    )
    assert log.url_host == "logs.example.com"
    advance_to(retro, Phase.ACTIONS)
    with pytest.raises(ValidationError, match="Adding facts is possible in the Gather"):
        gather.fact_add(retro=retro, escape=escape, kind="timeline", text="late", author=member)


def test_an_anonymous_retro_does_not_store_a_facts_author(team, facilitator, member, escape):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    fact = gather.fact_add(retro=retro, escape=escape, kind="timeline", text="t", author=member)
    assert fact.author is None


def test_a_fact_is_deleted_by_its_author_or_a_facilitator_only(
    retro, escape, member, engineer2, facilitator
):
    first = gather.fact_add(retro=retro, escape=escape, kind="timeline", text="a", author=member)
    second = gather.fact_add(retro=retro, escape=escape, kind="timeline", text="b", author=member)
    with pytest.raises(PermissionDenied, match="Only its author or the facilitator"):
        gather.fact_delete(fact=first, by=engineer2)
    gather.fact_delete(fact=first, by=member)
    gather.fact_delete(fact=second, by=facilitator)
    assert not EscapeFact.objects.exists()


# --- The board.


def test_every_member_but_a_viewer_gathers_on_the_board(retro, team, member, viewer, facilitator):
    make_escape(team, title="Not on the board yet")
    html = board(member, retro)
    assert 'id="gather-region"' in html
    assert "Propose escape" in html and "Propose new escape" in html
    assert "Add fact" in html
    assert "Add escape<" in board(facilitator, retro)
    viewer_html = board(viewer, retro)
    assert 'id="gather-region"' not in viewer_html
    assert "Add fact" not in viewer_html


def test_a_member_proposes_from_the_board_and_the_facilitator_keeps_it(
    retro, team, member, facilitator
):
    escape = make_escape(team, title="Pricing cache stale")
    response = client_for(member).post(
        url("retro_escape_propose", retro), {"escape": escape.pk}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="board"')
    assert "Proposed by mia" in html
    assert "The facilitator keeps or removes it." in html
    assert ">Keep</button>" not in html  # the member cannot keep it

    facilitator_html = board(facilitator, retro)
    assert ">Keep</button>" in facilitator_html
    card = client_for(facilitator).post(
        url("retro_escape_keep", retro, escape_id=escape.pk), headers=HX
    )
    assert card.status_code == 200
    assert card.content.decode().lstrip().startswith(f'<article id="escape-{escape.pk}"')
    assert "Proposed by" not in board(member, retro)


def test_without_javascript_a_proposal_redirects_back_with_a_message(retro, team, member):
    escape = make_escape(team, title="No script")
    response = client_for(member).post(
        url("retro_escape_propose", retro), {"escape": escape.pk}, follow=True
    )
    assert "You proposed “No script”; the facilitator keeps or removes it." in (
        response.content.decode()
    )


def test_the_facilitator_cannot_move_on_while_a_proposal_waits(retro, team, member, facilitator):
    gather.retro_propose_escape(retro=retro, escape=make_escape(team, title="Open"), by=member)
    response = client_for(facilitator).post(
        url("retro_advance", retro),
        {"expected_phase": Phase.GATHER, "to_phase": Phase.CATEGORIZE},
        headers=HX,
    )
    html = response.content.decode()
    assert 'class="errors board-errors" role="alert"' in html
    assert "Keep or remove each proposed escape before moving on: “Open”." in html


def test_a_refused_new_escape_shows_each_error_beside_its_field(retro, member):
    count = Escape.objects.count()
    future = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    client = client_for(member)
    for headers in (HX, {}):
        # The form's own checks first (a title is required) ...
        response = client.post(url("retro_escape_new", retro), new_escape_data(title=""))
        title = re.search(r'<input type="text" name="title"[^>]*>', response.content.decode())
        assert title and 'aria-invalid="true"' in title.group()
        assert 'aria-describedby="new-escape-title_error"' in title.group()
        # ... then the register's rules (escapes.services), on the field they name.
        data = new_escape_data(title="From the future", detected_at=future)
        response = client.post(url("retro_escape_new", retro), data, headers=headers)
        html = response.content.decode()
        assert response.status_code == 200
        assert '<details class="new-escape" open>' in html
        assert 'value="From the future"' in html  # what was typed stays
        detected = re.search(r'<input type="datetime-local" name="detected_at"[^>]*>', html)
        assert detected and 'aria-invalid="true"' in detected.group()
        assert re.search(
            r'id="new-escape-detected_at_error"><li>This time is in the future.</li>', html
        )
    assert Escape.objects.count() == count


def test_a_new_escape_from_the_board_is_proposed(retro, member):
    response = client_for(member).post(
        url("retro_escape_new", retro), new_escape_data(), headers=HX
    )
    html = response.content.decode()
    escape = Escape.objects.get(title="Search returns stale prices")
    assert f'id="escape-{escape.pk}"' in html and "Proposed by mia" in html
    assert item(retro, escape).proposed


def test_a_fact_shows_on_the_card_with_its_author_and_link(retro, escape, member, facilitator):
    response = client_for(member).post(
        url("retro_fact_add", retro, escape_id=escape.pk),
        {"kind": "log", "text": "Gateway 504s", "url": "https://logs.example.com/q/1"},
        headers=HX,
    )
    html = response.content.decode()
    assert html.lstrip().startswith(f'<article id="escape-{escape.pk}"')
    assert (
        '<a class="fact-text" href="https://logs.example.com/q/1" target="_blank" '
        'rel="noopener noreferrer">Gateway 504s</a>' in html
    )
    assert "(logs.example.com)" in html and '<span class="fact-author">mia</span>' in html
    assert "1 fact<" in html  # the overview row, out of band
    # The author and the facilitator may delete it; another member may not.
    fact = EscapeFact.objects.get()
    delete = url("retro_fact_delete", retro, fact_id=fact.pk)
    assert delete in board(member, retro) and delete in board(facilitator, retro)


def test_a_bad_link_is_refused_beside_the_link_field(retro, escape, member):
    response = client_for(member).post(
        url("retro_fact_add", retro, escape_id=escape.pk),
        {"kind": "ci_run", "text": "Nightly run", "url": "javascript:alert(1)"},
        headers=HX,
    )
    html = response.content.decode()
    key = escape.pk
    assert '<details class="fact-add" open>' in html
    field = re.search(rf'<input type="url" id="fact-{key}-url"[^>]*>', html)
    assert field is not None
    assert 'value="javascript:alert(1)"' in field.group()
    assert f'aria-describedby="fact-{key}-url-error"' in field.group()
    assert re.search(
        rf'<p class="errors field-error" id="fact-{key}-url-error" role="alert">'
        r"Enter a web address that starts with http:// or https://",
        html,
    )
    assert re.search(r'<option value="ci_run" selected>CI run</option>', html)
    assert 'value="Nightly run"' in html
    assert not EscapeFact.objects.exists()


def test_without_javascript_a_bad_link_comes_back_on_the_board(retro, escape, member):
    response = client_for(member).post(
        url("retro_fact_add", retro, escape_id=escape.pk),
        {"kind": "log", "text": "No link", "url": ""},
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert "A log is a link: enter its web address" in html


def test_another_members_fact_cannot_be_deleted(retro, escape, member, engineer2):
    fact = gather.fact_add(retro=retro, escape=escape, kind="timeline", text="a", author=member)
    response = client_for(engineer2).post(
        url("retro_fact_delete", retro, fact_id=fact.pk), headers=HX
    )
    assert response.status_code == 403
    assert url("retro_fact_delete", retro, fact_id=fact.pk) not in board(engineer2, retro)
    assert EscapeFact.objects.filter(pk=fact.pk).exists()


def test_facts_reach_the_summary_the_markdown_and_the_api(retro, escape, member):
    gather.fact_add(
        retro=retro,
        escape=escape,
        kind=FactKind.CI_RUN,
        text="Nightly [e2e] run",
        url="https://ci.example.com/runs/42",
        author=member,
    )
    client = client_for(member)
    summary = client.get(url("retro_summary", retro)).content.decode()
    assert "Nightly [e2e] run" in summary and "https://ci.example.com/runs/42" in summary
    markdown = client.get(url("retro_summary_markdown", retro)).content.decode()
    assert "### Facts" in markdown
    assert "- CI run: Nightly \\[e2e\\] run — https://ci.example.com/runs/42 (mia, " in markdown
    _, raw = api_token_create(user=member, name="read")
    data = (
        Client()
        .get(
            f"/api/v1/teams/{retro.team.slug}/retros/{retro.pk}",
            headers={"Authorization": f"Bearer {raw}"},
        )
        .json()
    )
    facts = data["escapes"][0]["facts"]
    assert [(f["kind"], f["text"], f["url"], f["author"]) for f in facts] == [
        ("ci_run", "Nightly [e2e] run", "https://ci.example.com/runs/42", "mia")
    ]
    assert data["escapes"][0]["proposed"] is False


def test_an_anonymous_retros_facts_name_nobody_anywhere(team, facilitator, member, escape):
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    gather.fact_add(retro=retro, escape=escape, kind="timeline", text="Paged", author=member)
    client = client_for(facilitator)
    for name in ("retro_detail", "retro_summary", "retro_summary_markdown"):
        page = client.get(url(name, retro)).content.decode()
        assert "Paged" in page and "mia" not in page, name
    _, raw = api_token_create(user=facilitator, name="read")
    data = (
        Client()
        .get(
            f"/api/v1/teams/{team.slug}/retros/{retro.pk}",
            headers={"Authorization": f"Bearer {raw}"},
        )
        .json()
    )
    assert "author" not in data["escapes"][0]["facts"][0]


def test_facts_cost_one_query_however_many(team, facilitator, member):
    escapes = [make_escape(team) for _ in range(5)]
    retro = services.retro_create(team=team, facilitator=facilitator, title="R", escapes=escapes)
    advance_to(retro, Phase.WHYS)
    client = client_for(member)
    counts = []
    for facts in (0, 1, 20):
        EscapeFact.objects.all().delete()
        for i in range(facts):
            gather.fact_add(
                retro=retro, escape=escapes[i % 5], kind="timeline", text=f"f{i}", author=member
            )
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url("retro_detail", retro)).content.decode()
        assert html.count('class="fact"') == facts
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2], counts
