"""Every URL pattern, walked with every persona: owner, member, viewer, outsider.

Each route must be listed in ACCESS with who may use it. A new URL that is not listed fails
`test_every_url_pattern_is_covered`, so nobody can add a page without saying who sees it.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from escapes.models import Escape, PipelineStage, Release
from evidence.models import ResultUpload, TrackedTest
from integrations.models import TrackerConnection, TrackerKind
from notices.models import ChatConnection, Notice
from retros.models import EscapeFact, PreventativeAction, RetroEscape, Retrospective, Why
from retros.views_join import retro_join_key
from teams.invitations import invitation_create
from teams.models import Membership, Role, Team
from teams.services import api_token_create
from tests.conftest import client_for


@dataclass(frozen=True)
class Access:
    """Who may use a route. `who` is one of:

    public      anyone, signed in or not
    user        any signed-in user (own data only)
    read        any member of the team, viewers included
    write       members who are not viewers
    facilitate  facilitators and admins of the team
    admin       team admins only
    staff       Django staff (the admin site)
    sso         anyone, when single sign-on is configured; here it is not, so 404 for all
                (tests/signin/test_sso.py walks them with a provider)
    """

    who: str
    method: str = "GET"
    api: bool = False
    data: Mapping[str, object] = field(default_factory=dict)


R, W, F, A = (
    Access("read"),
    Access("write", "POST"),
    Access("facilitate", "POST"),
    Access("admin", "POST"),
)
API_R = Access("read", api=True)
NOW = "2026-01-02T03:04:05Z"
NEW_ESCAPE = {"title": "Walked", "detected_at": NOW}

ACCESS: dict[str, Access | tuple[Access, ...]] = {
    "accounts/login/": Access("public"),
    "accounts/logout/": Access("user", "POST"),
    "accounts/password_change/": Access("user"),
    "accounts/password_change/done/": Access("user"),
    "accounts/password_reset/": Access("public"),
    "accounts/password_reset/done/": Access("public"),
    "accounts/reset/<uidb64>/<token>/": Access("public"),
    "accounts/reset/done/": Access("public"),
    "accounts/sso/start/": Access("sso"),
    "accounts/sso/callback/": Access("sso"),
    "admin/": Access("staff"),
    "api/v1/": Access("public"),
    "api/v1/openapi.json": Access("public"),
    "api/v1/docs": Access("public"),
    "api/v1/teams": Access("user", api=True),
    "api/v1/teams/<slug>": API_R,
    "api/v1/teams/<slug>/escapes": (
        API_R,
        Access("write", "POST", api=True, data=NEW_ESCAPE),
    ),
    "api/v1/teams/<slug>/escapes/<int:escape_id>": (
        API_R,
        Access("write", "PATCH", api=True, data={"title": "Renamed"}),
    ),
    "api/v1/teams/<slug>/escapes/bulk": Access(
        "write", "POST", api=True, data={"escapes": [NEW_ESCAPE]}
    ),
    "api/v1/teams/<slug>/releases": (
        API_R,
        Access("write", "POST", api=True, data={"version": "9.9", "released_at": NOW}),
    ),
    "api/v1/teams/<slug>/releases/<version>": Access(
        "write", "PATCH", api=True, data={"released_at": NOW}
    ),
    "api/v1/teams/<slug>/releases/<version>/stage-catches": Access(
        "write", "POST", api=True, data={"counts": {"Unit": 3}}
    ),
    "api/v1/teams/<slug>/metrics": API_R,
    "api/v1/teams/<slug>/retros": API_R,
    "api/v1/teams/<slug>/retros/<int:retro_id>": API_R,
    # Follow-through (retros/follow_through.py): any member who writes; the world's retro is
    # open, so the answer is a refusal (409), not a change, for those let in.
    "api/v1/teams/<slug>/actions/<int:action_id>/done": Access(
        "write", "POST", api=True, data={"note": "Walked"}
    ),
    "api/v1/teams/<slug>/actions/<int:action_id>/reopen": Access("write", "POST", api=True),
    # CI test results (evidence/api.py): JSON is not what it takes, so those let in get a 422.
    "api/v1/teams/<slug>/test-results": Access("write", "POST", api=True),
    "api/v1/teams/<slug>/test-results/<int:upload_id>": API_R,
    "": Access("user"),
    # Teams and people (issue 11): any signed-in user creates a team; an invitation's link and
    # a retro's join link are public (the link is the credential; GET changes nothing).
    "teams/new/": (
        Access("user"),
        Access("user", "POST", data={"name": "N", "slug": "n", "timezone": "UTC", "stages": "U"}),
    ),
    "invitations/<str:key>/": Access("public"),
    "join/<str:key>/": Access("public"),
    "t/<slug:team>/members/": Access("admin"),
    "t/<slug:team>/members/invite/": Access(
        "admin", "POST", data={"email": "new@example.com", "role": "member"}
    ),
    "t/<slug:team>/members/join-link/": A,
    "t/<slug:team>/members/<int:pk>/role/": A,
    "t/<slug:team>/members/<int:pk>/remove/": A,
    "t/<slug:team>/members/invitations/<int:pk>/resend/": A,
    "t/<slug:team>/members/invitations/<int:pk>/revoke/": A,
    "tokens/": Access("user"),
    "settings/notifications/": (Access("user"), Access("user", "POST", data={})),
    "settings/notifications/digests/<int:pk>/resend/": Access("user", "POST"),
    "tokens/new/": Access("user", "POST", data={"name": "ci"}),
    "tokens/<int:pk>/revoke/": Access("user", "POST"),
    "t/<slug:team>/": R,
    "t/<slug:team>/escapes/": R,
    "t/<slug:team>/escapes/new/": W,
    "t/<slug:team>/escapes/import/": W,
    "t/<slug:team>/escapes/import/template.csv": R,
    "t/<slug:team>/escapes/<int:pk>/": R,
    "t/<slug:team>/escapes/<int:pk>/edit/": W,
    "t/<slug:team>/escapes/<int:pk>/tests/": R,
    "t/<slug:team>/escapes/<int:pk>/tests/<int:test_id>/attach/": W,
    "t/<slug:team>/escapes/<int:pk>/tests/<int:test_id>/detach/": W,
    "t/<slug:team>/releases/": R,
    "t/<slug:team>/releases/new/": W,
    "t/<slug:team>/releases/<int:pk>/": R,
    "t/<slug:team>/releases/<int:pk>/catches/": W,
    "t/<slug:team>/releases/<int:pk>/time/": W,
    "t/<slug:team>/stages/": R,
    # CI test evidence pages (evidence/urls.py): members read, quarantining needs a writer.
    "t/<slug:team>/tests/": R,
    "t/<slug:team>/tests/uploads/": R,
    "t/<slug:team>/tests/setup/": R,
    "t/<slug:team>/tests/<int:pk>/": R,
    "t/<slug:team>/tests/<int:pk>/quarantine/": Access("write", "POST", data={"reason": "Walked"}),
    "t/<slug:team>/tests/<int:pk>/quarantine/remove/": W,
    "t/<slug:team>/stages/new/": A,
    "t/<slug:team>/stages/<int:pk>/rename/": A,
    "t/<slug:team>/stages/<int:pk>/move/": A,
    "t/<slug:team>/stages/<int:pk>/delete/": A,
    "t/<slug:team>/retro-rules/": A,
    # The audit trail (teams/audit_views.py) and its CSV: team admins only.
    "t/<slug:team>/audit/": Access("admin"),
    "t/<slug:team>/audit.csv": Access("admin"),
    "t/<slug:team>/notices/": Access("admin", "GET"),
    "t/<slug:team>/notices/<int:pk>/resend/": A,
    "t/<slug:team>/chat/": (Access("admin"), A),
    "t/<slug:team>/chat/<int:pk>/": (Access("admin"), A),
    "t/<slug:team>/chat/<int:pk>/test/": A,
    "t/<slug:team>/chat/<int:pk>/delete/": A,
    "t/<slug:team>/retros/": R,
    "t/<slug:team>/retros/new/": F,
    "t/<slug:team>/retros/guide/": Access("facilitate"),
    "t/<slug:team>/retros/guide/<str:category>/": Access(
        "facilitate", "POST", data={"text": "What differed?"}
    ),
    "t/<slug:team>/retros/guide/<str:category>/reset/": F,
    "t/<slug:team>/retros/<int:pk>/": R,
    "t/<slug:team>/retros/<int:pk>/summary/": R,
    "t/<slug:team>/retros/<int:pk>/summary.md": R,
    "dashboard/": Access("user"),
    "dashboard.csv": Access("user"),
    "escapes/": Access("user"),
    "t/<slug:team>/dashboard/": R,
    "t/<slug:team>/dashboard.csv": R,
    "api/v1/dashboard": Access("user", api=True),
    "api/v1/teams/<slug>/dashboard": API_R,
    "t/<slug:team>/integrations/connection/": (Access("admin"), A),
    "t/<slug:team>/integrations/connection/test/": A,
    "t/<slug:team>/integrations/connection/delete/": A,
    "t/<slug:team>/integrations/confluence/": (Access("admin"), A),
    "t/<slug:team>/integrations/confluence/delete/": A,
    "t/<slug:team>/integrations/confluence/publish/<int:pk>/": A,
    "t/<slug:team>/integrations/actions/<int:action_id>/push/retry/": W,
    # Tracker webhooks: no session; the URL token finds the connection and only the signature
    # (Jira) or the subscription's credentials (Azure DevOps) prove a delivery.
    "hooks/jira/<str:token>/": Access("webhook", "POST"),
    "hooks/azure/<str:token>/": Access("webhook", "POST"),
    "t/<slug:team>/retros/<int:pk>/escapes/add/": F,
    # Gather for every member (retros/views_gather.py): a member's escape is proposed, a
    # facilitator keeps it; a fact is deleted by its author (the world's is the member's) or a
    # facilitator, and tests/retros/test_gather.py has a member refused on someone else's.
    "t/<slug:team>/retros/<int:pk>/escapes/propose/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/new/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/keep/": F,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/facts/": Access(
        "write", "POST", data={"kind": "timeline", "text": "Alerts fired at 14:02"}
    ),
    "t/<slug:team>/retros/<int:pk>/facts/<int:fact_id>/delete/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/remove/": F,
    "t/<slug:team>/retros/<int:pk>/advance/": F,
    "t/<slug:team>/retros/<int:pk>/reopen/": F,
    "t/<slug:team>/retros/<int:pk>/close/": F,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/classify/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/whys/": W,
    # Edit and delete: its author (the world's why is the member's) or a facilitator or admin;
    # tests/retros/test_why_authorship.py has a member refused on someone else's why.
    "t/<slug:team>/retros/<int:pk>/whys/<int:why_id>/edit/": W,
    "t/<slug:team>/retros/<int:pk>/whys/<int:why_id>/delete/": W,
    "t/<slug:team>/retros/<int:pk>/whys/<int:why_id>/root-cause/": W,
    "t/<slug:team>/retros/<int:pk>/whys/<int:why_id>/root-cause/clear/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/actions/": W,
    "t/<slug:team>/retros/<int:pk>/actions/<int:action_id>/edit/": W,
    "t/<slug:team>/retros/<int:pk>/actions/<int:action_id>/delete/": W,
    # Marking an action done in Leakseal, or reopening it (retros/views_follow.py).
    "t/<slug:team>/retros/actions/<int:action_id>/done/": W,
    "t/<slug:team>/retros/actions/<int:action_id>/reopen/": W,
    # The live board (retros/stream.py): its event stream and presence strip; viewers watch too.
    "t/<slug:team>/retros/<int:pk>/stream/": R,
    "t/<slug:team>/retros/<int:pk>/presence/": R,
    # Live facilitation (retros/views_facilitation.py).
    "t/<slug:team>/retros/<int:pk>/timer/start/": F,
    "t/<slug:team>/retros/<int:pk>/timer/pause/": F,
    "t/<slug:team>/retros/<int:pk>/timer/resume/": F,
    "t/<slug:team>/retros/<int:pk>/timer/extend/": F,
    "t/<slug:team>/retros/<int:pk>/timer/clear/": F,
    "t/<slug:team>/retros/<int:pk>/focus/": F,
    "t/<slug:team>/retros/<int:pk>/voting/open/": F,
    "t/<slug:team>/retros/<int:pk>/voting/close/": F,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/vote/": W,
    "t/<slug:team>/retros/<int:pk>/escapes/<int:escape_id>/unvote/": W,
}


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes: list[str] = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                routes.append(prefix + str(pattern.pattern))
            else:
                routes.extend(_routes(pattern, prefix + str(pattern.pattern)))
        elif isinstance(pattern, URLPattern):
            routes.append(prefix + str(pattern.pattern))
    return routes


ROUTES = sorted(set(_routes(get_resolver())))


def _accesses(route: str) -> tuple[Access, ...]:
    spec = ACCESS.get(route, ())
    return spec if isinstance(spec, tuple) else (spec,)


# (route, access) for every method a route answers; unknown routes fail the coverage test.
CASES = [(route, access) for route in ROUTES for access in _accesses(route)]
CASE_IDS = [f"{access.method} {route}" for route, access in CASES]


def test_every_url_pattern_is_covered():
    assert sorted(set(ROUTES) - set(ACCESS)) == [], "add the new routes to ACCESS"
    assert sorted(set(ACCESS) - set(ROUTES)) == [], "remove routes that no longer exist"


@pytest.fixture
def world(team: Team, other_team: Team, owner, member, viewer, outsider) -> dict:
    """One of everything in the team, so every route has a real object to point at."""
    now = timezone.now()
    stage = team.stages.first()
    assert isinstance(stage, PipelineStage)
    release = Release.objects.create(team=team, version="1.0", released_at=now - timedelta(days=3))
    escape = Escape.objects.create(
        team=team, title="Leak", merged_at=now - timedelta(days=5), detected_at=now, release=release
    )
    retro = Retrospective.objects.create(team=team, title="Retro", facilitator=owner, phase="whys")
    RetroEscape.objects.create(retro=retro, escape=escape)
    # Written by the member: a why is edited and deleted by its author or a facilitator.
    why = Why.objects.create(
        retro=retro, escape=escape, text="Because the mock was lenient", author=member
    )
    fact = EscapeFact.objects.create(
        retro=retro,
        escape=escape,
        kind="log",
        text="Gateway log",
        url="https://logs.test/1",
        author=member,
    )
    action = PreventativeAction.objects.create(
        retro=retro, escape=escape, kind="new_test", title="Contract test", stage=stage
    )
    connection = TrackerConnection(
        team=team,
        kind=TrackerKind.JIRA_CLOUD,
        base_url="https://acme.atlassian.net",
        project="SHOP",
        account_email="bot@acme.test",
    )
    connection.webhook_secret = "walk-secret"
    connection.save()
    notice = Notice.objects.create(
        team=team,
        channel="email",
        recipient="a@example.test",
        occasion="walk",
        kind="reminder",
        subject="Walked",
        state="failed",
    )
    digest = Notice.objects.create(  # the owner's own "all my teams" digest: no team
        channel="email",
        recipient="owner@example.test",
        occasion=f"digest-all:{owner.pk}:2026-01-05",
        kind="digest",
        subject="Walked digest",
        state="failed",
    )
    # Its URL is a closed local port: the admin's test message fails at once, nothing leaves.
    chat = ChatConnection(team=team, kind="slack_webhook", name="#walk", events=["retro_started"])
    chat.secret = "http://127.0.0.1:9/services/T1/B2/walk"
    chat.save()
    tracked = TrackedTest.objects.create(
        team=team,
        stage=stage,
        name="test_walk",
        key="w" * 64,
        first_run_at=now,
        last_run_at=now,
        last_outcome="passed",
    )
    invitation, invitation_key = invitation_create(
        team=team, email="invited@example.com", role="member", by=owner
    )
    upload = ResultUpload.objects.create(team=team, stage=stage, commit="a1", ran_at=now)
    return {
        "team": team.slug,
        "slug": team.slug,
        "webhook_token": connection.webhook_token,
        "pk_by_route": {
            "escapes/<int:pk>": escape.pk,
            "releases/<int:pk>": release.pk,
            "stages/<int:pk>": stage.pk,
            "retros/<int:pk>": retro.pk,
            "publish/<int:pk>": retro.pk,
            "members/<int:pk>": Membership.objects.get(team=team, user=member).pk,
            "invitations/<int:pk>": invitation.pk,
            "notices/<int:pk>": notice.pk,
            "digests/<int:pk>": digest.pk,
            "chat/<int:pk>": chat.pk,
            "tests/<int:pk>": tracked.pk,
        },
        "invitation_key": invitation_key,
        "join_key": retro_join_key(retro),
        "escape_id": escape.pk,
        "retro_id": retro.pk,
        "why_id": why.pk,
        "action_id": action.pk,
        "fact_id": fact.pk,
        "test_id": tracked.pk,
        "version": release.version,
        "upload_id": upload.pk,
        "owner": owner,
    }


def _path(route: str, world: dict, persona: User) -> str:
    path = route
    for marker, pk in world["pk_by_route"].items():
        if marker in path:
            path = path.replace(marker, marker.replace("<int:pk>", str(pk)))
    if "tokens/<int:pk>" in path:
        token, _ = api_token_create(user=world["owner"], name="owner's")
        path = path.replace("<int:pk>", str(token.pk))
    if path.startswith("invitations/"):
        path = path.replace("<str:key>", world["invitation_key"])
    path = path.replace("<str:key>", world["join_key"])
    replacements = {
        "<slug:team>": world["team"],
        "<slug>": world["slug"],
        "<int:escape_id>": str(world["escape_id"]),
        "<int:retro_id>": str(world["retro_id"]),
        "<int:why_id>": str(world["why_id"]),
        "<int:action_id>": str(world["action_id"]),
        "<int:fact_id>": str(world["fact_id"]),
        "<int:test_id>": str(world["test_id"]),
        "<version>": world["version"],
        "<int:upload_id>": str(world["upload_id"]),
        "<uidb64>/<token>": "MQ/set-password",
        "<str:token>": world["webhook_token"],
        "<str:category>": "environment_mismatch",
    }
    for marker, value in replacements.items():
        path = path.replace(marker, value)
    return "/" + path


def _request(client: Client, access: Access, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if access.api and access.method != "GET":
        return client.generic(
            access.method,
            path,
            data=json.dumps(access.data),
            content_type="application/json",
            headers=headers,
        )
    if access.method == "POST":
        return client.post(path, data=access.data, headers=headers)
    return client.get(path, headers=headers)


ALLOWED = {
    "read": {"owner", "member", "viewer"},
    "write": {"owner", "member"},
    "facilitate": {"owner"},
    "admin": {"owner"},
}


@pytest.mark.parametrize("persona", ["owner", "member", "viewer", "outsider"])
@pytest.mark.parametrize(("route", "access"), CASES, ids=CASE_IDS)
def test_route_access(route: str, access: Access, persona: str, world, request):
    user = request.getfixturevalue(persona)
    path = _path(route, world, user)
    client = client_for(user) if not access.api else Client()
    token = api_token_create(user=user, name="walk")[1] if access.api else None
    response = _request(client, access, path, token)
    status = response.status_code

    if access.who == "public" and route == "invitations/<str:key>/":
        # The invitation is for invited@example.com: no persona's account has that address, so
        # every signed-in persona is told it is someone else's (tests/teams/ has the rest).
        assert status == 403, (path, status)
        assert "This invitation is for invited@example.com" in response.content.decode()
    elif access.who == "public":
        # django-ninja's API root only redirects to the docs under DEBUG; 404 otherwise.
        expected = (200, 302, 404) if route == "api/v1/" else (200, 302)
        assert status in expected, (path, status)
    elif access.who == "sso":
        assert status == 404, (path, status)
    elif access.who == "staff":
        assert status == 302 and "login" in response.headers["Location"], (path, status)
    elif access.who == "user":
        if route == "tokens/<int:pk>/revoke/" and persona != "owner":
            assert status == 404, "revoking somebody else's token must look like a missing one"
        elif route.startswith("settings/notifications/digests/") and persona != "owner":
            assert status == 404, "somebody else's digest must look like a missing one"
        else:
            assert status in (200, 302), (path, status)
    elif access.who == "webhook":
        # The team's connection is Jira: its token opens the Jira endpoint only, and a signed-in
        # session is no proof of a delivery.
        assert status == (401 if route.startswith("hooks/jira/") else 404), (path, status)
    elif persona == "outsider":
        assert status == 404, (path, status)
    elif persona in ALLOWED[access.who]:
        assert status not in (401, 403, 404, 405), (path, status)
        assert status < 500
    else:
        assert status == 403, (path, status)


TEAM_CASES = [(r, a) for r, a in CASES if a.who in ALLOWED]
# Routes naming an object of the team; a category (escapes.models.Category) is a word, not one.
OBJECT_CASES = [
    (r, a) for r, a in TEAM_CASES if "<" in r.replace("<slug", "").replace("<str:category>", "")
]


@pytest.mark.parametrize(
    ("route", "access"), OBJECT_CASES, ids=[f"{a.method} {r}" for r, a in OBJECT_CASES]
)
def test_an_outsider_cannot_reach_another_teams_object_through_their_own_team(
    route: str, access: Access, world, outsider, other_team
):
    """The outsider is an admin of their own team; our object ids under their slug are 404."""
    world = {**world, "team": other_team.slug, "slug": other_team.slug}
    path = _path(route, world, outsider)
    token = api_token_create(user=outsider, name="walk")[1] if access.api else None
    client = Client() if access.api else client_for(outsider)
    response = _request(client, access, path, token)
    assert response.status_code == 404, (path, response.status_code)


@pytest.mark.parametrize(
    ("route", "access"), TEAM_CASES, ids=[f"{a.method} {r}" for r, a in TEAM_CASES]
)
def test_anonymous_gets_sign_in_or_401(route: str, access: Access, world):
    path = _path(route, world, world["owner"])
    response = _request(Client(), access, path, None)
    if access.api:
        assert response.status_code == 401
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")


def test_roles_are_the_four_documented_ones():
    assert set(Role.values) == {"admin", "facilitator", "member", "viewer"}


GET_CASES = [(r, a) for r, a in CASES if a.method == "GET" and a.who in {*ALLOWED, "user"}]


@pytest.mark.parametrize(("route", "access"), GET_CASES, ids=[r for r, _ in GET_CASES])
def test_signed_in_answers_are_private_and_vary_on_htmx(route: str, access: Access, world, owner):
    """Every page the owner can open: not kept by any cache, and keyed on HX-Request when an
    htmx request gets another answer (issue 13: Back showed the bare fragment)."""
    path = _path(route, world, owner)
    client = client_for(owner) if not access.api else Client()
    token = api_token_create(user=owner, name="walk")[1] if access.api else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    plain = client.get(path, headers=headers)
    swap = client.get(path, headers={**headers, "HX-Request": "true"})
    for response in (plain, swap):
        if "Cache-Control" in response and route.endswith("/stream/"):
            continue  # the live board's event stream chooses `no-cache` itself
        assert "no-store" in response.get("Cache-Control", ""), (path, response.status_code)
        assert "private" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    vary = {v.strip().lower() for v in plain.get("Vary", "").split(",")}
    if plain.streaming:
        return
    if plain.status_code == 200 and swap.content != plain.content:
        assert "hx-request" in vary, f"{path} answers htmx differently but varies on {vary}"
    if plain.get("Content-Type", "").startswith("text/html"):
        assert "hx-request" in vary, (path, vary)
