"""The spec checks of the fake trackers (tests/fakes/spec.py, tests/fakes/server.py).

A fake that let a wrong request through, or answered in a shape the vendor never sends, would
make every integration test pass against a tracker that does not exist; these pin the checks.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes import accounts
from tests.fakes.azure import FakeAzure
from tests.fakes.server import FakeTracker, Reply, Request
from tests.fakes.spec import SPECS, SpecViolation, spec

JIRA = spec("jira_platform.json")
WIT = spec("ado_wit_7.1.json")
WORK = spec("ado_work_7.1.json")

CREATE_ADO = "/acme/Shop/_apis/wit/workitems/$Task"
ITERATIONS = "/acme/Shop/Shop%20Team/_apis/work/teamsettings/iterations"
V71 = {"api-version": ["7.1"]}
PATCH = "application/json-patch+json"
TITLE = [{"op": "add", "path": "/fields/System.Title", "value": "Add a test"}]


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_the_vendor_specs_are_the_published_files_unchanged():
    """SHA256SUMS was written when the files were copied in: a fake that "fixes" a spec to
    pass its own tests fails here instead."""
    lines = (SPECS / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}
    on_disk = sorted(p.name for p in SPECS.glob("*.json"))
    assert sorted(sums) == on_disk
    for name in on_disk:
        assert hashlib.sha256((SPECS / name).read_bytes()).hexdigest() == sums[name], name


# --- Requests.


def test_a_valid_azure_devops_create_passes():
    operation = WIT.check_request("POST", CREATE_ADO, V71, body(TITLE), PATCH)

    assert operation.template == "/{organization}/{project}/_apis/wit/workitems/${type}"


def test_a_request_without_api_version_is_a_violation():
    with pytest.raises(SpecViolation, match="needs query parameter api-version"):
        WIT.check_request("POST", CREATE_ADO, {}, body(TITLE), PATCH)


def test_a_json_patch_sent_as_plain_json_is_a_violation():
    with pytest.raises(SpecViolation, match="consumes \\['application/json-patch\\+json'\\]"):
        WIT.check_request("POST", CREATE_ADO, V71, body(TITLE), "application/json")


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add", "path": "/fields/System.Title", "value": "not in a list"},
        [{"op": "upsert", "path": "/fields/System.Title", "value": "x"}],
        [{"op": "add", "path": 7, "value": "x"}],
    ],
    ids=["object-not-list", "unknown-op", "path-not-string"],
)
def test_a_json_patch_breaking_the_schema_is_a_violation(patch):
    with pytest.raises(SpecViolation, match="request body"):
        WIT.check_request("POST", CREATE_ADO, V71, body(patch), PATCH)


def test_a_body_that_is_not_json_is_a_violation():
    with pytest.raises(SpecViolation, match="not JSON"):
        WIT.check_request("POST", CREATE_ADO, V71, b"title=x", PATCH)


def test_a_body_on_an_operation_that_takes_none_is_a_violation():
    with pytest.raises(SpecViolation, match="takes no body"):
        WORK.check_request("GET", ITERATIONS, V71, b'{"x": 1}', "application/json")


def test_a_wiql_query_that_is_not_text_is_a_violation():
    with pytest.raises(SpecViolation, match="at query"):
        WIT.check_request(
            "POST",
            "/acme/Shop/Shop%20Team/_apis/wit/wiql",
            V71,
            body({"query": 42}),
            "application/json",
        )


def test_jira_create_is_checked_against_the_v3_document_for_v2_too():
    valid = body({"fields": {"summary": "x", "project": {"key": "SHOP"}}})
    JIRA.check_request("POST", "/rest/api/2/issue", {}, valid, "application/json")

    with pytest.raises(SpecViolation, match="at fields"):
        JIRA.check_request("POST", "/rest/api/2/issue", {}, body({"fields": "x"}), "")


def test_an_unknown_path_is_a_violation():
    with pytest.raises(SpecViolation, match="no operation GET /acme/Shop/_apis/wit/nothing"):
        WIT.operation("GET", "/acme/Shop/_apis/wit/nothing")
    with pytest.raises(SpecViolation, match="no operation DELETE"):
        WORK.operation("DELETE", ITERATIONS)


# --- Responses.


def test_jira_create_answering_the_id_as_a_number_is_a_violation():
    with pytest.raises(SpecViolation, match="201 response at id"):
        JIRA.check_response("POST", "/rest/api/3/issue", 201, {"id": 10000, "key": "SHOP-1"})

    JIRA.check_response("POST", "/rest/api/3/issue", 201, {"id": "10000", "key": "SHOP-1"})


def test_a_success_status_the_document_does_not_list_is_a_violation():
    with pytest.raises(SpecViolation, match="does not answer 201"):
        WIT.check_response("POST", CREATE_ADO, 201, {"id": 1})


def test_a_missing_body_where_the_document_has_one_is_a_violation():
    with pytest.raises(SpecViolation, match="must have a JSON body"):
        WIT.check_response("GET", "/acme/Shop/_apis/wit/workitems/5", 200, None)


def test_work_item_fields_hold_plain_values():
    # The document types each field value "object"; Azure DevOps sends strings and numbers.
    item = {
        "id": 5,
        "rev": 2,
        "fields": {"System.Title": "x", "System.Rev": 2, "System.Tags": None},
        "relations": [{"rel": "System.LinkTypes.Related", "url": "u", "attributes": {"a": 1}}],
        "_links": {"html": {"href": "h"}},
        "url": "u",
    }
    WIT.check_response("GET", "/acme/Shop/_apis/wit/workitems/5", 200, item)

    with pytest.raises(SpecViolation, match="at id"):
        WIT.check_response("GET", "/acme/Shop/_apis/wit/workitems/5", 200, {**item, "id": "5"})


def test_collections_come_wrapped_in_count_and_value():
    iteration = {"id": "9a4c", "name": "S", "path": "Shop\\S", "attributes": {"timeFrame": "past"}}
    WORK.check_response("GET", ITERATIONS, 200, {"count": 1, "value": [iteration]})

    with pytest.raises(SpecViolation, match="must be a collection"):
        WORK.check_response("GET", ITERATIONS, 200, [iteration])
    with pytest.raises(SpecViolation, match="must be a collection"):
        WORK.check_response("GET", ITERATIONS, 200, {"count": 2, "value": [iteration]})
    bad_frame = {**iteration, "attributes": {"timeFrame": "someday"}}
    with pytest.raises(SpecViolation, match="at 0/attributes/timeFrame"):
        WORK.check_response("GET", ITERATIONS, 200, {"count": 1, "value": [bad_frame]})


# --- Over HTTP: the fake answers a violation with 500 and records it.


@pytest.fixture
def azure() -> Iterator[FakeAzure]:
    fake = FakeAzure().start()
    yield fake
    fake.stop()


def auth() -> dict[str, str]:
    token = base64.b64encode(f":{accounts.ADO_PAT}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_the_fake_answers_a_request_violation_with_500_and_records_it(azure):
    response = requests.post(
        f"{azure.url}{CREATE_ADO}", json=TITLE, headers=auth(), timeout=5
    )  # no api-version, and application/json

    assert response.status_code == 500
    assert "spec violation" in response.json()["message"]
    assert azure.violations == [
        "ado_wit_7.1.json: POST /{organization}/{project}/_apis/wit/workitems/${type} "
        "needs query parameter api-version"
    ]


def test_the_fake_records_a_path_no_document_has(azure):
    response = requests.get(f"{azure.url}/acme/_apis/projects/Shop", headers=auth(), timeout=5)

    assert response.status_code == 500
    assert azure.violations == ["no operation GET /acme/_apis/projects/Shop"]


def test_the_fake_serves_a_valid_exchange_without_violations(azure):
    response = requests.post(
        f"{azure.url}{CREATE_ADO}",
        params={"api-version": "7.1"},
        data=body(TITLE),
        headers={**auth(), "Content-Type": PATCH},
        timeout=5,
    )

    assert response.status_code == 200
    assert response.json()["fields"]["System.Title"] == "Add a test"
    assert azure.violations == []


class WrongJira(FakeTracker):
    """Answers Jira's create with a numeric id, as no Jira does."""

    specs = [JIRA]

    def handle(self, request: Request) -> Reply:
        return Reply(201, {"id": 10000, "key": "SHOP-1", "self": "x"})


def test_the_fake_turns_its_own_wrong_answer_into_a_recorded_violation():
    fake = WrongJira().start()
    try:
        response = requests.post(
            f"{fake.url}/rest/api/3/issue", json={"fields": {"summary": "x"}}, timeout=5
        )
    finally:
        fake.stop()

    assert response.status_code == 500
    assert fake.violations == [
        "the fake's own answer: jira_platform.json: POST /rest/api/3/issue 201 response "
        "at id: 10000 is not of type 'string'"
    ]


# --- Confluence (an excerpt of Atlassian's Cloud document; tests/fakes/specs/README.md).

CONFLUENCE = spec("confluence_content_trimmed.json")
PAGE_CREATE = {
    "type": "page",
    "title": "Release 4.2 retro",
    "space": {"key": "ENG"},
    "ancestors": [{"id": "98001"}],
    "body": {"storage": {"value": "<p>x</p>", "representation": "storage"}},
}


def test_a_valid_confluence_page_create_passes():
    operation = CONFLUENCE.check_request(
        "POST", "/wiki/rest/api/content", {}, body(PAGE_CREATE), "application/json"
    )
    assert operation.body["operationId"] == "createContent"


def test_a_confluence_update_without_its_version_is_a_violation():
    update = {"type": "page", "title": "x", "body": PAGE_CREATE["body"]}
    with pytest.raises(SpecViolation, match="version"):
        CONFLUENCE.check_request(
            "PUT", "/wiki/rest/api/content/98002", {}, body(update), "application/json"
        )


def test_a_confluence_body_in_an_unknown_representation_is_a_violation():
    wrong = {**PAGE_CREATE, "body": {"storage": {"value": "x", "representation": "html"}}}
    with pytest.raises(SpecViolation, match="html"):
        CONFLUENCE.check_request(
            "POST", "/wiki/rest/api/content", {}, body(wrong), "application/json"
        )


def test_a_confluence_space_answer_without_its_name_is_a_violation():
    space = {"key": "ENG", "type": "global", "status": "current", "_expandable": {}, "_links": {}}
    with pytest.raises(SpecViolation, match="name"):
        CONFLUENCE.check_response("GET", "/wiki/rest/api/space/ENG", 200, space)


def test_an_operation_leakseal_does_not_call_is_not_in_the_excerpt():
    with pytest.raises(SpecViolation, match="no operation DELETE"):
        CONFLUENCE.operation("DELETE", "/wiki/rest/api/content/98002")
