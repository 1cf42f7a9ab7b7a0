"""Trust in whys: only the author or a facilitator changes one, an edit says who made it and
keeps the earlier text, and an anonymous retro hides every name, its history included."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from retros import services
from retros.models import Retrospective, Why, WhyRevision
from teams.models import Role
from teams.services import membership_set
from tests.api.conftest import api_for
from tests.conftest import client_for
from tests.retros.conftest import advance_to

HX = {"HX-Request": "true"}
OWNER_MESSAGE = "Only its author or the facilitator can change this why."


def url(name: str, retro: Retrospective, **kwargs) -> str:
    return reverse(name, kwargs={"team": retro.team.slug, "pk": retro.pk, **kwargs})


@pytest.fixture
def other_member(team) -> User:
    user = User.objects.create_user(username="sam", password="pw-sam")
    membership_set(team=team, user=user, role=Role.MEMBER)
    return user


@pytest.fixture
def mias_why(whys_retro, escape, member) -> Why:
    return services.why_add(
        retro=whys_retro, escape=escape, text="The gateway mock never timed out", author=member
    )


@pytest.fixture
def anonymous_retro(team, facilitator, escape) -> Retrospective:
    retro = services.retro_create(
        team=team, facilitator=facilitator, title="Anon", escapes=[escape], anonymous=True
    )
    return advance_to(retro, "whys")


# --- Services.


def test_the_author_edits_their_own_why_and_the_earlier_text_is_kept(
    mias_why, member, frozen_clock
):
    written_at = mias_why.created_at
    frozen_clock.move_to(written_at + timedelta(minutes=5), tick=False)

    edited = services.why_edit(
        why=mias_why, text="No latency test for the gateway", expected_revision=1, by=member
    )

    assert (edited.text, edited.revision, edited.edited_by) == (
        "No latency test for the gateway",
        2,
        member,
    )
    assert edited.edited_at == written_at + timedelta(minutes=5)
    [earlier] = WhyRevision.objects.filter(why=mias_why)
    assert (earlier.revision, earlier.text, earlier.written_by, earlier.written_at) == (
        1,
        "The gateway mock never timed out",
        member,
        written_at,
    )


def test_a_member_cannot_edit_or_delete_someone_elses_why(mias_why, other_member):
    with pytest.raises(PermissionDenied, match=OWNER_MESSAGE):
        services.why_edit(why=mias_why, text="Mine now", expected_revision=1, by=other_member)
    with pytest.raises(PermissionDenied, match=OWNER_MESSAGE):
        services.why_delete(why=mias_why, by=other_member)

    mias_why.refresh_from_db()
    assert (mias_why.text, mias_why.revision, mias_why.edited_at) == (
        "The gateway mock never timed out",
        1,
        None,
    )
    assert not WhyRevision.objects.exists()


def test_a_viewer_cannot_change_even_a_why_they_once_wrote(whys_retro, escape, viewer, team):
    why = Why.objects.create(retro=whys_retro, escape=escape, text="Old words", author=viewer)
    with pytest.raises(PermissionDenied):
        services.why_edit(why=why, text="New words", expected_revision=1, by=viewer)
    with pytest.raises(PermissionDenied):
        services.why_delete(why=why, by=viewer)


def test_a_facilitator_or_admin_edits_anyones_why_and_each_version_keeps_its_writer(
    mias_why, facilitator, owner
):
    services.why_edit(why=mias_why, text="Second wording", expected_revision=1, by=facilitator)
    services.why_edit(why=mias_why, text="Third wording", expected_revision=2, by=owner)

    mias_why.refresh_from_db()
    assert (mias_why.text, mias_why.revision, mias_why.edited_by) == ("Third wording", 3, owner)
    history = [(r.revision, r.text, r.written_by) for r in mias_why.revisions.all()]
    assert history == [
        (2, "Second wording", facilitator),
        (1, "The gateway mock never timed out", mias_why.author),
    ], "newest first, each with who wrote that text"


def test_an_unchanged_text_writes_no_history(mias_why, member):
    services.why_edit(
        why=mias_why, text="The gateway mock never timed out", expected_revision=1, by=member
    )
    mias_why.refresh_from_db()
    assert (mias_why.revision, mias_why.edited_at) == (1, None)
    assert not WhyRevision.objects.exists()


def test_a_concurrent_edit_is_still_refused_by_its_revision(mias_why, member, facilitator):
    services.why_edit(
        why=mias_why, text="The facilitator's words", expected_revision=1, by=facilitator
    )

    with pytest.raises(ValidationError) as refused:
        services.why_edit(why=mias_why, text="Mia's words", expected_revision=1, by=member)

    assert refused.value.error_dict["text"][0].code == "stale"
    assert WhyRevision.objects.count() == 1


def test_the_author_or_a_facilitator_deletes_a_why_and_its_history_goes_with_it(
    whys_retro, escape, member, facilitator
):
    own = services.why_add(retro=whys_retro, escape=escape, text="Mine", author=member)
    services.why_edit(why=own, text="Mine, reworded", expected_revision=1, by=member)
    theirs = services.why_add(retro=whys_retro, escape=escape, text="Theirs", author=facilitator)
    version = Retrospective.objects.get(pk=whys_retro.pk).version

    services.why_delete(why=own, by=member)
    services.why_delete(why=theirs, by=facilitator)

    assert not Why.objects.exists() and not WhyRevision.objects.exists()
    assert Retrospective.objects.get(pk=whys_retro.pk).version == version + 2


def test_an_edit_bumps_the_retro_version_for_the_other_boards(mias_why, member):
    version = Retrospective.objects.get(pk=mias_why.retro_id).version
    services.why_edit(why=mias_why, text="Reworded", expected_revision=1, by=member)
    assert Retrospective.objects.get(pk=mias_why.retro_id).version == version + 1


def test_any_member_still_marks_a_root_cause_on_someone_elses_why(mias_why, other_member):
    # Unchanged rule: marking is a board decision, not an edit of the text.
    services.why_mark_root_cause(why=mias_why, kind="process_failure")
    assert Why.objects.get(pk=mias_why.pk).is_root_cause
    response = client_for(other_member).post(
        url("retro_why_unmark_root_cause", mias_why.retro, why_id=mias_why.pk), headers=HX
    )
    assert response.status_code == 200
    assert not Why.objects.get(pk=mias_why.pk).is_root_cause


def test_in_an_anonymous_retro_only_a_facilitator_changes_whys_and_no_editor_is_stored(
    anonymous_retro, escape, member, facilitator
):
    why = services.why_add(retro=anonymous_retro, escape=escape, text="First", author=member)
    with pytest.raises(PermissionDenied):
        services.why_edit(why=why, text="Second", expected_revision=1, by=member)

    services.why_edit(why=why, text="Second", expected_revision=1, by=facilitator)
    services.why_edit(why=why, text="Third", expected_revision=2, by=facilitator)

    why.refresh_from_db()
    assert (why.author, why.edited_by, why.edited_at is not None) == (None, None, True)
    assert [(r.text, r.written_by) for r in why.revisions.all()] == [
        ("Second", None),
        ("First", None),
    ]


# --- Views.


def test_a_member_editing_someone_elses_why_gets_403(mias_why, other_member):
    client = client_for(other_member)
    edit = url("retro_why_edit", mias_why.retro, why_id=mias_why.pk)
    delete = url("retro_why_delete", mias_why.retro, why_id=mias_why.pk)

    for response in (
        client.post(edit, {"text": "Mine now", "revision": 1}, headers=HX),
        client.post(edit, {"text": "Mine now", "revision": 1}),
        # Even a text the blameless check would hold is refused first.
        client.post(edit, {"text": "mia dropped the ball", "revision": 1}, headers=HX),
        client.post(delete, headers=HX),
    ):
        assert response.status_code == 403
        assert OWNER_MESSAGE in response.content.decode()
    assert Why.objects.get(pk=mias_why.pk).text == "The gateway mock never timed out"


def test_the_author_edits_by_htmx_and_gets_the_card_with_edited_by_and_history(mias_why, member):
    response = client_for(member).post(
        url("retro_why_edit", mias_why.retro, why_id=mias_why.pk),
        {"text": "No latency test for the gateway", "revision": 1},
        headers=HX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<article id="escape-{mias_why.escape_id}"')
    assert "No latency test for the gateway" in html
    assert "edited by mia" in html
    assert "History: 1 earlier version" in html
    assert "The gateway mock never timed out" in html


def test_edit_and_delete_are_offered_only_to_those_allowed(
    mias_why, member, other_member, facilitator
):
    edit = url("retro_why_edit", mias_why.retro, why_id=mias_why.pk)
    delete = url("retro_why_delete", mias_why.retro, why_id=mias_why.pk)
    mark = url("retro_why_mark_root_cause", mias_why.retro, why_id=mias_why.pk)
    board = url("retro_detail", mias_why.retro)

    for user, allowed in ((member, True), (facilitator, True), (other_member, False)):
        html = client_for(user).get(board).content.decode()
        assert (edit in html, delete in html) == (allowed, allowed), user.username
        assert mark in html, "any member marks a root cause"


def test_why_routes_answer_outsiders_404_and_wrong_methods_405(mias_why, member, outsider):
    for name in ("retro_why_edit", "retro_why_delete"):
        path = url(name, mias_why.retro, why_id=mias_why.pk)
        assert client_for(outsider).post(path, {"text": "x", "revision": 1}).status_code == 404
        assert client_for(member).get(path).status_code == 405


# --- Anonymity: no name anywhere a why is shown, its history included.


def test_an_anonymous_retro_shows_no_author_or_editor_anywhere(
    anonymous_retro, escape, member, facilitator, owner
):
    why = services.why_add(retro=anonymous_retro, escape=escape, text="First text", author=member)
    services.why_edit(why=why, text="Second text", expected_revision=1, by=facilitator)
    services.why_edit(why=why, text="Third text", expected_revision=2, by=owner)
    names = [member.username, facilitator.username, owner.username]
    client = client_for(member)

    board = client.get(url("retro_detail", anonymous_retro)).content.decode()
    summary = client.get(url("retro_summary", anonymous_retro)).content.decode()
    markdown = client.get(url("retro_summary_markdown", anonymous_retro)).content.decode()
    start = board.index('class="whys"')
    whys_part = board[start : board.index("</section>", start)]  # not the owner picker
    assert "History: 2 earlier versions" in whys_part
    assert "First text" in whys_part and "Second text" in whys_part
    summary_whys = summary[summary.index("Five Whys") :]
    assert "edited" in summary_whys and "edited by" not in summary_whys
    assert "Third text (edited)" in markdown

    # The facilitator's name is the retro's own (the board header, the API's `facilitator`),
    # never a why's: look only where whys are shown.
    for shown in (whys_part, summary_whys, markdown[markdown.index("Five Whys") :]):
        for name in (member.username, owner.username):
            assert name not in shown
        assert "edited by" not in shown

    body = api_for(member).get(f"/teams/{anonymous_retro.team.slug}/retros/{anonymous_retro.pk}")
    [api_why] = body.json()["escapes"][0]["whys"]
    assert "author" not in api_why and "edited_by" not in api_why
    assert api_why["edited_at"] is not None
    assert [r["text"] for r in api_why["revisions"]] == ["Second text", "First text"]
    assert all("written_by" not in r for r in api_why["revisions"])
    assert not any(name in str(api_why) for name in names)


def test_the_api_gives_who_edited_and_the_earlier_versions(mias_why, facilitator, member):
    services.why_edit(why=mias_why, text="Reworded", expected_revision=1, by=facilitator)

    body = api_for(member).get(f"/teams/checkout/retros/{mias_why.retro_id}").json()

    [api_why] = body["escapes"][0]["whys"]
    assert (api_why["author"], api_why["edited_by"], api_why["revision"]) == ("mia", "fred", 2)
    assert [(r["revision"], r["text"], r["written_by"]) for r in api_why["revisions"]] == [
        (1, "The gateway mock never timed out", "mia")
    ]


def test_the_openapi_schema_documents_the_why_history(db, client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    why = schemas["WhyOut"]["properties"]
    assert {"edited_at", "edited_by", "revision", "revisions"} <= set(why)
    assert "anonymous" in why["edited_by"]["description"]
    revision = schemas["WhyRevisionOut"]["properties"]
    assert {"revision", "text", "written_by", "written_at"} <= set(revision)
