"""The tracker connection page: admins connect, test and disconnect; secrets never come back."""

import logging
from typing import Any

import pytest
from django.urls import reverse

from integrations.models import TrackerConnection, TrackerKind
from tests.conftest import client_for
from tests.fakes import accounts
from tests.fakes.connection_forms import JIRA_SITE, jira_cloud_form

UNREACHABLE = "http://127.0.0.1:9"


def _url(name: str, team) -> str:
    return reverse(name, kwargs={"team": team.slug})


def _page(team) -> str:
    return _url("integration_connection", team)


def _test(team) -> str:
    return _url("integration_connection_test", team)


def _azure(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": TrackerKind.AZURE_DEVOPS,
        "base_url": f"https://dev.azure.com/{accounts.ADO_ORG}",
        "project": accounts.ADO_PROJECT,
        "ado_team": accounts.ADO_TEAM,
        "issue_type": "Task",
        "token": accounts.ADO_PAT,
        "webhook_username": accounts.ADO_HOOK_USER,
        "webhook_secret": accounts.ADO_HOOK_PASSWORD,
        **overrides,
    }


@pytest.fixture
def http_allowed(settings):
    """The fakes speak plain http, which only DEBUG allows (production needs https)."""
    settings.DEBUG = True


def _saved(team) -> TrackerConnection:
    return TrackerConnection.objects.get(team=team)


# --- Saving -----------------------------------------------------------------------------


def test_an_admin_connectsjira_cloud_form(team, owner):
    response = client_for(owner).post(
        _page(team),
        {
            **jira_cloud_form(base_url=JIRA_SITE + "/"),
            "intake_enabled": "on",
            "intake_label": "escape",
            "map_merged_at": "customfield_10050",
            "map_component": "components",
            "map_severity": "priority",
            "map_release": "fixVersions",
        },
    )

    assert response.status_code == 302
    saved = _saved(team)
    assert saved.kind == TrackerKind.JIRA_CLOUD
    assert saved.base_url == JIRA_SITE, "the trailing slash is dropped"
    assert (saved.project, saved.board_id, saved.priority) == ("SHOP", 1, "High")
    assert saved.account_email == accounts.JIRA_EMAIL
    assert saved.token == accounts.JIRA_TOKEN
    assert saved.webhook_secret == accounts.JIRA_WEBHOOK_SECRET
    assert saved.intake_enabled and saved.intake_label == "escape"
    assert saved.field_mapping == {
        "merged_at": "customfield_10050",
        "component": "components",
        "severity": "priority",
        "release": "fixVersions",
    }


def test_an_admin_connects_jira_data_center_with_a_token_alone(team, owner):
    data = jira_cloud_form(
        kind=TrackerKind.JIRA_DC,
        base_url="https://jira.acme.internal",
        account_email="",
        token=accounts.JIRA_PAT,
        intake_enabled="on",
        intake_query="project = SHOP AND issuetype = Bug",
    )

    response = client_for(owner).post(_page(team), data)

    assert response.status_code == 302
    saved = _saved(team)
    assert saved.kind == TrackerKind.JIRA_DC
    assert saved.token == accounts.JIRA_PAT
    assert saved.account_email == ""
    assert saved.intake_query == "project = SHOP AND issuetype = Bug"
    assert saved.field_mapping == {}


def test_an_admin_connects_azure_devops(team, owner):
    response = client_for(owner).post(
        _page(team), _azure(board_id="7", account_email="someone@acme.test", priority="2")
    )

    assert response.status_code == 302
    saved = _saved(team)
    assert saved.kind == TrackerKind.AZURE_DEVOPS
    assert (saved.project, saved.ado_team, saved.priority) == ("Shop", "Shop Team", "2")
    assert saved.board_id is None, "a board is Jira's; Azure DevOps has a team"
    assert saved.account_email == ""
    assert saved.token == accounts.ADO_PAT
    assert saved.webhook_username == accounts.ADO_HOOK_USER
    assert saved.webhook_secret == accounts.ADO_HOOK_PASSWORD


def test_editing_with_empty_secret_fields_keeps_the_stored_ones(team, owner):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())
    first = _saved(team)

    response = client.post(
        _page(team), jira_cloud_form(project="CART", token="", webhook_secret="", priority="")
    )

    assert response.status_code == 302
    saved = _saved(team)
    assert saved.pk == first.pk
    assert (saved.project, saved.priority) == ("CART", "")
    assert saved.token == accounts.JIRA_TOKEN
    assert saved.webhook_secret == accounts.JIRA_WEBHOOK_SECRET
    assert saved.webhook_token == first.webhook_token, "the webhook URL stays the same"


def test_a_new_token_replaces_the_stored_one(team, owner):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())

    client.post(_page(team), jira_cloud_form(token="rotated-token-Hh2", webhook_secret=""))

    assert _saved(team).token == "rotated-token-Hh2"
    assert _saved(team).webhook_secret == accounts.JIRA_WEBHOOK_SECRET


@pytest.mark.parametrize(
    "change",
    [{"base_url": "https://evil.example.net"}, {"kind": TrackerKind.JIRA_DC, "account_email": ""}],
    ids=["another site", "another tracker kind"],
)
def test_the_stored_token_is_kept_only_for_the_site_it_was_entered_for(team, owner, change):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())

    response = client.post(_page(team), jira_cloud_form(token="", **change))

    assert response.status_code == 200
    assert "enter it again" in " ".join(response.context["form"].errors["token"])
    assert _saved(team).base_url == JIRA_SITE, "nothing saved"


def test_a_jira_webhook_secret_is_not_kept_as_an_azure_devops_password(team, owner):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())

    refused = client.post(_page(team), _azure(webhook_secret=""))
    client.post(_page(team), _azure(webhook_secret="", webhook_username=""))

    assert "goes with the user name" in " ".join(refused.context["form"].errors["webhook_secret"])
    saved = _saved(team)
    assert saved.kind == TrackerKind.AZURE_DEVOPS
    assert saved.webhook_secret == ""


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            jira_cloud_form(account_email=""),
            "account_email",
            "Jira Cloud signs in with an account email",
        ),
        (jira_cloud_form(token=""), "token", "Jira Cloud needs an API token"),
        (
            jira_cloud_form(kind=TrackerKind.JIRA_DC, token=""),
            "token",
            "Jira Data Center needs a personal access token",
        ),
        (_azure(token=""), "token", "Azure DevOps needs a personal access token"),
        (_azure(ado_team=""), "ado_team", "Name the Azure DevOps team"),
        (_azure(project=""), "project", "This field is required"),
        (jira_cloud_form(board_id="board one"), "board_id", "Enter a whole number"),
        (jira_cloud_form(board_id="0"), "board_id", "greater than or equal to 1"),
        (jira_cloud_form(base_url="not a url"), "base_url", "Enter a valid URL"),
        (jira_cloud_form(base_url="https://me:pw@acme.atlassian.net"), "base_url", "credentials"),
        (jira_cloud_form(base_url="http://jira.acme.test"), "base_url", "Use an https:// URL"),
        (jira_cloud_form(kind="github"), "kind", "Select a valid choice"),
        (jira_cloud_form(intake_enabled="on"), "intake_query", "needs a query, or a label"),
        (
            _azure(webhook_header="X-Leakseal"),
            "webhook_header",
            "either basic authentication (a user name) or a header",
        ),
        (_azure(webhook_username=""), "webhook_username", "Name the user"),
        (_azure(webhook_secret=""), "webhook_secret", "goes with the user name"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None,
)
def test_invalid_input_is_refused_naming_the_field(team, owner, data, field, message, caplog):
    caplog.set_level(logging.DEBUG)

    response = client_for(owner).post(_page(team), data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    body = response.content.decode()
    assert message.replace("'", "&#x27;") in body
    assert not TrackerConnection.objects.filter(team=team).exists(), "nothing half-saved"
    for secret in (accounts.JIRA_TOKEN, accounts.ADO_PAT, accounts.ADO_HOOK_PASSWORD):
        assert secret not in body
        assert secret not in caplog.text


def test_plain_http_is_accepted_when_debug_is_on(team, owner, http_allowed):
    response = client_for(owner).post(
        _page(team), jira_cloud_form(base_url="http://jira.acme.test")
    )

    assert response.status_code == 302
    assert _saved(team).base_url == "http://jira.acme.test"


# --- What the page shows ----------------------------------------------------------------


def test_the_page_shows_a_stored_token_without_its_value(team, owner, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())
    saved = _saved(team)

    body = client.get(_page(team)).content.decode()

    assert "A token is stored" in body
    assert "A webhook secret is stored" in body
    assert 'value="SHOP"' in body
    for secret in (
        accounts.JIRA_TOKEN,
        accounts.JIRA_WEBHOOK_SECRET,
        saved.token_encrypted,
        saved.webhook_secret_encrypted,
    ):
        assert secret not in body
        assert secret not in caplog.text
    assert 'name="token"' in body and 'autocomplete="new-password"' in body


def test_the_page_shows_the_webhook_url_to_give_the_tracker(team, owner, settings):
    settings.SITE_URL = "https://leakseal.acme.test"
    client = client_for(owner)
    client.post(_page(team), _azure())

    body = client.get(_page(team)).content.decode()

    token = _saved(team).webhook_token
    assert f"https://leakseal.acme.test/hooks/azure/{token}/" in body


def test_the_page_says_how_long_pushes_obey_a_rate_limit(team, owner, settings):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())

    body = client.get(_page(team)).content.decode()
    assert "When Jira asks Leakseal to slow down" in body
    assert "pushes wait as long as it asks, up to 1 hour" in body

    settings.TRACKER_RETRY_AFTER_MAX = 1800
    assert "up to 30 minutes" in client.get(_page(team)).content.decode()


def test_a_team_without_a_connection_gets_an_empty_form(team, owner):
    response = client_for(owner).get(_page(team))

    assert response.status_code == 200
    assert "not connected to a tracker" in response.content.decode()
    assert "A token is stored" not in response.content.decode()


# --- Test connection --------------------------------------------------------------------


def test_testing_unsaved_azure_values_names_the_next_iteration_and_saves_nothing(
    team, owner, fake_azure, http_allowed
):
    data = _azure(base_url=f"{fake_azure.url}/{accounts.ADO_ORG}")

    response = client_for(owner).post(_test(team), data)

    assert response.status_code == 200
    body = response.content.decode()
    assert "it works" in body
    assert "Shop\\Sprint 42" in body
    assert not TrackerConnection.objects.filter(team=team).exists()
    assert accounts.ADO_PAT not in body


def test_testing_the_saved_azure_connection(team, owner, azure_connection):
    response = client_for(owner).post(_test(team), headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "it works" in body
    assert "Shop\\Sprint 42" in body
    assert "<html" not in body, "an htmx request gets the partial alone"


def test_testing_the_saved_jira_connection_names_the_future_sprint(team, owner, jira_connection):
    response = client_for(owner).post(_test(team), headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "it works" in body
    assert "SHOP Sprint 15" in body
    assert accounts.JIRA_TOKEN not in body


def test_testing_jira_data_center_values_with_a_personal_access_token(
    team, owner, fake_jira, http_allowed
):
    data = jira_cloud_form(
        kind=TrackerKind.JIRA_DC, base_url=fake_jira.url, account_email="", token=accounts.JIRA_PAT
    )

    body = client_for(owner).post(_test(team), data).content.decode()

    assert "it works" in body
    assert "SHOP Sprint 15" in body


def test_testing_form_values_with_an_empty_token_uses_the_stored_one(
    team, owner, jira_connection, fake_jira, http_allowed
):
    data = jira_cloud_form(base_url=fake_jira.url, token="", webhook_secret="")

    body = client_for(owner).post(_test(team), data).content.decode()

    assert "it works" in body
    assert "SHOP Sprint 15" in body


def test_testing_another_site_does_not_send_it_the_stored_token(
    team, owner, jira_connection, fake_jira, fake_azure, http_allowed
):
    data = jira_cloud_form(base_url=fake_azure.url, token="")

    body = client_for(owner).post(_test(team), data).content.decode()

    assert "failed" in body
    assert "enter it again" in body
    assert fake_azure.requests == []


def test_a_wrong_jira_token_shows_the_trackers_401_message(team, owner, fake_jira, http_allowed):
    data = jira_cloud_form(base_url=fake_jira.url, token="not-the-token")

    response = client_for(owner).post(_test(team), data)

    body = response.content.decode()
    assert response.status_code == 200
    assert "failed" in body
    assert "401" in body
    assert "not-the-token" not in body


def test_a_wrong_azure_pat_shows_the_trackers_401_answer(team, owner, fake_azure, http_allowed):
    data = _azure(base_url=f"{fake_azure.url}/{accounts.ADO_ORG}", token="not-the-pat")

    response = client_for(owner).post(_test(team), data)

    body = response.content.decode()
    assert response.status_code == 200
    assert "failed" in body
    assert "401" in body
    assert "not-the-pat" not in body


@pytest.mark.parametrize("values", [jira_cloud_form, _azure], ids=["jira", "azure"])
def test_an_unreachable_tracker_is_a_line_saying_so_not_a_500(
    team, owner, http_allowed, values, caplog
):
    caplog.set_level(logging.DEBUG)
    data = values(base_url=UNREACHABLE)

    response = client_for(owner).post(_test(team), data, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "failed" in body
    assert "Could not connect to the tracker" in body
    assert data["token"] not in body
    assert data["token"] not in caplog.text


def test_testing_invalid_values_lists_the_problems_by_field(team, owner):
    response = client_for(owner).post(_test(team), _azure(ado_team="", token=""))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Azure DevOps team: Name the Azure DevOps team" in body
    assert "API token / personal access token: Azure DevOps needs a personal access token" in body


def test_testing_with_nothing_saved_and_no_values_says_what_to_do(team, owner):
    body = client_for(owner).post(_test(team)).content.decode()

    assert "No tracker is connected yet" in body


def test_a_stored_token_no_key_decrypts_is_a_line_not_a_500(
    team, owner, azure_connection, settings
):
    from cryptography.fernet import Fernet

    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]

    response = client_for(owner).post(_test(team))

    assert response.status_code == 200
    assert "cannot be decrypted" in response.content.decode()


def test_secrets_never_reach_a_response_or_the_log(
    team, owner, azure_connection, fake_azure, caplog, http_allowed
):
    caplog.set_level(logging.DEBUG)
    client = client_for(owner)
    bodies = [
        client.get(_page(team)).content,
        client.post(_page(team), _azure(ado_team="")).content,  # errors re-render the form
        client.post(_test(team)).content,
        client.post(_test(team), _azure(base_url=azure_connection.base_url, token="")).content,
        client.post(_test(team), _azure(base_url=UNREACHABLE)).content,
    ]

    for body in bodies:
        for secret in (
            accounts.ADO_PAT,
            accounts.ADO_HOOK_PASSWORD,
            azure_connection.token_encrypted,
            azure_connection.webhook_secret_encrypted,
        ):
            assert secret.encode() not in body
    for secret in (accounts.ADO_PAT, accounts.ADO_HOOK_PASSWORD):
        assert secret not in caplog.text
    assert fake_azure.requests, "the saved connection was really tested"


# --- Disconnect -------------------------------------------------------------------------


def test_disconnecting_deletes_the_connection_and_its_credentials(team, owner):
    client = client_for(owner)
    client.post(_page(team), jira_cloud_form())

    response = client.post(_url("integration_connection_delete", team))

    assert response.status_code == 302
    assert not TrackerConnection.objects.filter(team=team).exists()
    assert "not connected to a tracker" in client.get(_page(team)).content.decode()


def test_disconnecting_when_nothing_is_connected_changes_nothing(team, owner):
    response = client_for(owner).post(_url("integration_connection_delete", team), follow=True)

    assert response.status_code == 200
    assert "No tracker was connected" in response.content.decode()


# --- Who may ----------------------------------------------------------------------------

ROUTES = [
    ("integration_connection", "get"),
    ("integration_connection", "post"),
    ("integration_connection_test", "post"),
    ("integration_connection_delete", "post"),
]


@pytest.mark.parametrize(
    ("persona", "status"),
    [("facilitator", 403), ("member", 403), ("viewer", 403), ("outsider", 404)],
)
@pytest.mark.parametrize(("name", "method"), ROUTES)
def test_only_team_admins_reach_the_connection_pages(
    team, owner, persona, status, name, method, request
):
    client_for(owner).post(_page(team), jira_cloud_form())
    client = client_for(request.getfixturevalue(persona))

    response = getattr(client, method)(_url(name, team), jira_cloud_form(project="MINE"))

    assert response.status_code == status
    assert _saved(team).project == "SHOP", "nothing changed"


def test_an_outsider_cannot_see_another_teams_connection_through_their_own_team(
    team, owner, outsider, other_team
):
    client_for(owner).post(_page(team), jira_cloud_form(project="ZEBRA"))

    body = client_for(outsider).get(_page(other_team)).content.decode()

    assert "ZEBRA" not in body
    assert "not connected to a tracker" in body


def test_anonymous_users_are_sent_to_sign_in(team):
    from django.test import Client

    response = Client().get(_page(team))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("integration_connection", "put"),
        ("integration_connection_test", "get"),
        ("integration_connection_delete", "get"),
    ],
)
def test_the_wrong_method_is_405(team, owner, name, method):
    response = getattr(client_for(owner), method)(_url(name, team))

    assert response.status_code == 405


# --- The team list ------------------------------------------------------------------------


def test_the_team_list_links_admins_to_the_tracker_connection(team, owner, member):
    client_for(owner).post(_page(team), jira_cloud_form())

    admin_view = client_for(owner).get(reverse("home")).content.decode()
    member_view = client_for(member).get(reverse("home")).content.decode()

    assert _page(team) in admin_view
    assert _page(team) not in member_view
    assert "tickets go to Jira Cloud (SHOP)" in member_view


def test_the_team_list_links_only_the_teams_a_user_administers(team, other_team, owner):
    from teams.models import Role
    from teams.services import membership_set

    membership_set(team=other_team, user=owner, role=Role.VIEWER)

    body = client_for(owner).get(reverse("home")).content.decode()

    assert _page(team) in body
    assert _page(other_team) not in body
