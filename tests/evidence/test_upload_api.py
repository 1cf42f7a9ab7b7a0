"""The upload API: POST /api/v1/teams/{slug}/test-results and the upload's status.

Every answer is checked against the OpenAPI document (the fixture of tests/api/conftest.py).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from evidence import services
from evidence.models import UPLOAD_MAX_BYTES, ResultFile, ResultUpload, TrackedTest
from evidence.processing import upload_process
from teams.services import api_token_create
from tests.api.conftest import BASE, ApiClient
from tests.api.conftest import (  # noqa: F401 (an autouse fixture: every answer is checked)
    answers_match_the_openapi_document as _answers_match_the_openapi_document,
)
from tests.api.openapi_check import document
from tests.evidence.factories import junit_gz, junit_xml, many_cases
from tests.solo_worker import solo_worker

PATH = "/teams/checkout/test-results"
CASES = [("shop.CartTest", "adds_item", "passed"), ("shop.CartTest", "pays", "failed")]


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """The processing tasks queued on commit (no broker here; the worker test has one)."""
    calls: list[int] = []

    class Task:
        def delay(self, pk: int) -> None:
            calls.append(pk)

    monkeypatch.setattr(services, "registered_task", lambda name: Task())
    return calls


def post_files(
    api: ApiClient,
    files: list[tuple[str, bytes]],
    *,
    path: str = PATH,
    **fields: str,
) -> Any:
    data: dict[str, Any] = {"stage": "Integration", "commit": "abc123", **fields}
    data["file"] = [SimpleUploadedFile(name, content) for name, content in files]
    return api.client.post(BASE + path, data, headers=api.headers)


def post_raw(api: ApiClient, body: bytes, content_type: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"stage": "Unit", "commit": "abc", **params}.items())
    return api.client.post(
        f"{BASE}{PATH}?{query}", body, content_type=content_type, headers=api.headers
    )


# --- Answers.


def test_a_new_upload_answers_202_with_its_status_url_and_is_queued_on_commit(
    member_api, stages, django_capture_on_commit_callbacks, queued
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_files(
            member_api,
            [("results.xml", junit_xml(CASES))],
            branch="main",
            run_url="https://ci.example.com/run/7",
            release="2.4.0",
            component="payments",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["duplicate"] is False
    assert body["cases"] == 2
    assert body["url"] == f"{BASE}{PATH}/{body['id']}"
    upload = ResultUpload.objects.get(pk=body["id"])
    assert (upload.stage.name, upload.commit, upload.branch) == ("Integration", "abc123", "main")
    assert (upload.release_version, upload.component) == ("2.4.0", "payments")
    stored = ResultFile.objects.get(upload=upload)
    assert gzip.decompress(bytes(stored.data)) == junit_xml(CASES)
    assert queued == [upload.pk]

    status = member_api.get(f"{PATH}/{upload.pk}")
    assert status.status_code == 200
    assert status.json()["status"] == "queued"


def test_the_status_endpoint_gives_the_counts_once_processed(member_api, stages):
    body = post_files(member_api, [("r.xml", junit_xml(CASES))]).json()
    upload_process(body["id"])
    status = member_api.get(f"{PATH}/{body['id']}").json()
    assert status["status"] == "done"
    assert (status["passed"], status["failed"], status["skipped"]) == (1, 1, 0)
    assert status["processed_at"] is not None
    assert not ResultFile.objects.exists()


def test_several_files_and_gzip_by_magic_bytes(member_api, stages):
    response = post_files(
        member_api,
        [
            ("unit.xml", junit_xml(CASES)),
            # Named .xml but gzip: recognised by its first bytes, not its name.
            ("more.xml", junit_gz([("shop.Pay", "refunds", "passed")])),
        ],
    )
    assert response.status_code == 202, response.content
    assert response.json()["cases"] == 3
    assert ResultFile.objects.count() == 2
    upload_process(response.json()["id"])
    upload = ResultUpload.objects.get()
    assert (upload.status, upload.passed, upload.failed) == ("done", 2, 1)


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/xml; charset=utf-8", "application/gzip"]
)
def test_a_raw_body_with_the_fields_as_query_parameters(member_api, stages, content_type):
    xml = junit_xml(CASES)
    body = gzip.compress(xml) if "gzip" in content_type else xml
    response = post_raw(member_api, body, content_type, branch="main")
    assert response.status_code == 202, response.content
    upload = ResultUpload.objects.get(pk=response.json()["id"])
    assert (upload.stage.name, upload.commit, upload.branch, upload.cases) == (
        "Unit",
        "abc",
        "main",
        2,
    )


def test_the_same_run_twice_answers_200_with_the_existing_upload(member_api, stages, queued):
    first = post_files(member_api, [("r.xml", junit_xml(CASES))], run_url="https://ci/1")
    # The same file gzipped is the same file.
    again = post_files(member_api, [("r.xml.gz", junit_gz(CASES))], run_url="https://ci/1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True
    assert ResultUpload.objects.count() == 1
    # Another run of the same commit (its URL differs) is a run of its own.
    other = post_files(member_api, [("r.xml", junit_xml(CASES))], run_url="https://ci/2")
    assert other.status_code == 202
    assert ResultUpload.objects.count() == 2


def test_a_duplicate_that_races_is_found_by_the_unique_constraint(member_api, stages):
    first = post_files(member_api, [("r.xml", junit_xml(CASES))]).json()
    real_filter = ResultUpload.objects.filter
    seen = {"n": 0}

    def blind_first_look(*args: Any, **kwargs: Any) -> Any:
        # The first lookup misses (the other request has not committed yet); the insert
        # then hits the unique constraint and the service finds the winner.
        seen["n"] += 1
        if seen["n"] == 1:
            return ResultUpload.objects.none()
        return real_filter(*args, **kwargs)

    with mock.patch.object(ResultUpload.objects, "filter", side_effect=blind_first_look):
        again = post_files(member_api, [("r.xml", junit_xml(CASES))])
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first["id"]
    assert again.json()["duplicate"] is True
    assert ResultUpload.objects.count() == 1
    assert ResultFile.objects.count() == 1


def test_an_integrity_error_that_is_not_a_duplicate_is_not_hidden(member_api, stages):
    with mock.patch.object(ResultFile.objects, "bulk_create", side_effect=IntegrityError("x")):
        response = post_files(member_api, [("r.xml", junit_xml(CASES))])
    assert response.status_code == 500
    assert not ResultUpload.objects.exists()


# --- Refusals: scoping.


def test_an_outsider_gets_404_and_a_viewer_403(outsider_api, viewer_api, stages):
    assert post_files(outsider_api, [("r.xml", junit_xml(CASES))]).status_code == 404
    assert post_files(viewer_api, [("r.xml", junit_xml(CASES))]).status_code == 403
    assert not ResultUpload.objects.exists()


def test_no_token_is_401(stages, client):
    response = client.post(BASE + PATH, {"stage": "Unit", "commit": "a"})
    assert response.status_code == 401


def test_the_status_of_another_teams_upload_is_404(member_api, outsider_api, stages):
    body = post_files(member_api, [("r.xml", junit_xml(CASES))]).json()
    assert outsider_api.get(f"{PATH}/{body['id']}").status_code == 404
    assert outsider_api.get(f"/teams/other/test-results/{body['id']}").status_code == 404
    assert member_api.get(f"{PATH}/{body['id'] + 1000}").status_code == 404


def test_a_viewer_reads_an_uploads_status(member_api, viewer_api, stages):
    body = post_files(member_api, [("r.xml", junit_xml(CASES))]).json()
    assert viewer_api.get(f"{PATH}/{body['id']}").status_code == 200


# --- Refusals: input.


def test_an_unknown_stage_is_422_naming_it_and_the_teams_stages(member_api, stages):
    response = post_files(member_api, [("r.xml", junit_xml(CASES))], stage="Smoke")
    assert response.status_code == 422
    item = response.json()["detail"][0]
    assert item["loc"] == ["form", "stage"]
    assert "Smoke" in item["msg"]
    assert "Unit, Integration, E2E" in item["msg"]


def test_the_stage_name_is_matched_without_case(member_api, stages):
    response = post_files(member_api, [("r.xml", junit_xml(CASES))], stage="integration")
    assert response.status_code == 202
    assert ResultUpload.objects.get().stage.name == "Integration"


def test_the_commit_is_required(member_api, stages):
    response = member_api.client.post(
        BASE + PATH,
        {"stage": "Unit", "file": SimpleUploadedFile("r.xml", junit_xml(CASES))},
        headers=member_api.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["form", "commit"]
    raw = member_api.client.post(
        f"{BASE}{PATH}?stage=Unit", junit_xml(CASES), "application/xml", headers=member_api.headers
    )
    assert raw.status_code == 422
    assert raw.json()["detail"][0]["loc"] == ["query", "commit"]


def test_no_file_is_422(member_api, stages):
    response = post_files(member_api, [])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["form", "file"]
    raw = post_raw(member_api, b"", "application/xml")
    assert raw.status_code == 422


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"garbage", "multipart/form-data"),
        (b"--x\r\ngarbage", "multipart/form-data; boundary=x"),
    ],
)
def test_a_multipart_body_that_cannot_be_read_is_422(member_api, stages, body, content_type):
    response = member_api.client.post(
        BASE + PATH, body, content_type=content_type, headers=member_api.headers
    )
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"][0] in ("body", "form")


def test_another_content_type_is_422_saying_what_to_send(member_api, stages):
    response = member_api.post(PATH, {"stage": "Unit"})
    assert response.status_code == 422
    assert "multipart/form-data" in response.json()["detail"][0]["msg"]


def test_a_malformed_file_is_422_with_its_name_line_and_reason_and_nothing_is_kept(
    member_api, stages, queued
):
    broken = b'<?xml version="1.0"?>\n<testsuites>\n<testsuite name="s">\n<testcase name="a">\n'
    response = post_files(member_api, [("good.xml", junit_xml(CASES)), ("bad-results.xml", broken)])
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert "bad-results.xml" in message
    assert "line 5" in message
    assert "not well-formed" in message
    assert not ResultUpload.objects.exists()
    assert not ResultFile.objects.exists()
    assert queued == []


def test_a_file_that_is_not_junit_or_has_a_dtd_is_422(member_api, stages):
    html = post_files(member_api, [("page.xml", b"<html><body/></html>")])
    assert html.status_code == 422
    assert "<html>" in html.json()["detail"][0]["msg"]
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        b"<testsuites><testsuite><testcase name='&lol;'/></testsuite></testsuites>"
    )
    refused = post_raw(member_api, bomb, "application/xml")
    assert refused.status_code == 422
    assert "DTD" in refused.json()["detail"][0]["msg"]
    assert not ResultUpload.objects.exists()


def test_a_broken_gzip_is_422(member_api, stages):
    response = post_files(member_api, [("r.xml.gz", junit_gz(CASES)[:40])])
    assert response.status_code == 422
    assert "r.xml.gz" in response.json()["detail"][0]["msg"]


# --- Bounds.


def test_a_body_over_the_limit_is_413_by_its_content_length_naming_the_limit(member_api, stages):
    response = member_api.client.post(
        f"{BASE}{PATH}?stage=Unit&commit=a",
        b"<testsuites/>",
        content_type="application/xml",
        headers={**member_api.headers, "Content-Length": str(UPLOAD_MAX_BYTES + 1)},
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "the limit is 25 MB" in response.json()["detail"]


def test_a_raw_body_over_djangos_own_memory_limit_is_read_and_accepted(
    member_api, stages, settings
):
    # DATA_UPLOAD_MAX_MEMORY_SIZE bounds request.body; the upload reads its own stream.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    xml = junit_xml(many_cases(200))
    assert len(xml) > 1024
    response = post_raw(member_api, xml, "application/xml")
    assert response.status_code == 202, response.content
    assert response.json()["cases"] == 200


def test_a_real_oversized_multipart_body_is_413_json(member_api, stages, monkeypatch):
    monkeypatch.setattr("evidence.api.UPLOAD_MAX_BYTES", 10_000)
    response = post_files(member_api, [("r.xml", junit_xml(many_cases(300)))])
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The upload is 1")
    assert "bytes; the limit is 10,000 bytes per request" in response.json()["detail"]
    assert not ResultUpload.objects.exists()


def test_a_real_multipart_file_over_djangos_memory_limits_is_accepted(member_api, stages):
    # Django keeps a file part over FILE_UPLOAD_MAX_MEMORY_SIZE in a temporary file, and
    # DATA_UPLOAD_MAX_MEMORY_SIZE bounds only the form fields: 6 MB of XML goes through.
    padding = "x" * 230
    cases = [("big.Suite", f"test_{padding}_{i}", "passed") for i in range(25_000)]
    xml = junit_xml(cases)
    assert len(xml) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = post_files(member_api, [("big.xml", xml)])
    assert response.status_code == 202, response.content
    assert response.json()["cases"] == 25_000


def test_too_many_files_or_fields_is_413_json(member_api, stages, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [(f"r{i}.xml", junit_xml(CASES)) for i in range(3)]
    response = post_files(member_api, files)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("More than 2 files in one upload")
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    response = post_files(member_api, files[:1], branch="b", run_url="u", release="1")
    assert response.status_code == 413
    assert "form fields" in response.json()["detail"]
    assert not ResultUpload.objects.exists()


def test_too_many_cases_is_413_naming_the_count_and_the_limit(member_api, stages, monkeypatch):
    monkeypatch.setattr("evidence.services.UPLOAD_MAX_CASES", 150)
    response = post_files(
        member_api,
        [("a.xml", junit_xml(many_cases(100))), ("b.xml", junit_xml(many_cases(100)))],
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "200 test cases in one upload; the limit is 150."
    assert not ResultUpload.objects.exists()


def test_xml_over_the_unzipped_limit_is_413(member_api, stages, monkeypatch):
    monkeypatch.setattr("evidence.services.UNZIPPED_MAX_BYTES", 1024 * 1024)
    big = junit_gz(many_cases(30_000))
    assert len(big) < 1024 * 1024 < len(gzip.decompress(big))
    response = post_files(member_api, [("big.xml.gz", big)])
    assert response.status_code == 413
    assert "once unzipped" in response.json()["detail"]


# --- The document.


def test_the_document_lists_the_endpoints_with_their_answers():
    paths = document()["paths"]
    post = paths["/api/v1/teams/{slug}/test-results"]["post"]
    assert {"200", "202", "401", "403", "404", "413", "422"} <= set(post["responses"])
    content = post["requestBody"]["content"]
    assert {"multipart/form-data", "application/xml", "text/xml", "application/gzip"} <= set(
        content
    )
    assert {p["name"] for p in post["parameters"]} >= {"slug", "stage", "commit", "release"}
    get = paths["/api/v1/teams/{slug}/test-results/{upload_id}"]["get"]
    assert {"200", "404"} <= set(get["responses"])


# --- A large file. How fast it is answered is measured by `make bench-ci` (BENCHMARKS.md), not
# here: a test that checks time fails when the machine is busy.


def test_a_20000_case_file_is_accepted_and_counted(member_api, stages):
    xml = junit_xml(many_cases(20_000, failing_every=50))
    post_files(member_api, [("warm.xml", junit_xml(CASES))])  # warm the imports
    started = time.perf_counter()
    response = post_files(member_api, [("big.xml", xml)])
    elapsed = time.perf_counter() - started
    assert response.status_code == 202
    assert response.json()["cases"] == 20_000
    print(f"\n20,000-case upload ({len(xml) / 1e6:.1f} MB) answered in {elapsed * 1000:.0f} ms")


# --- A real worker: the upload is processed after the request answered (the web side is a
# process of its own with the worker's environment: the same database and broker, Redis when
# REDIS_URL is set, else the file-system broker in a temporary folder; as in
# tests/facilitation/test_timer_task.py).

UPLOAD = """
import json
import django
django.setup()
from django.test import Client
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

xml = {xml!r}
response = Client(HTTP_HOST="localhost").post(
    "/api/v1/teams/checkout/test-results",
    {{"stage": "Integration", "commit": "abc123", "file": SimpleUploadedFile("r.xml", xml)}},
    headers={{"Authorization": "Bearer {token}"}},
)
print(json.dumps({{"status": response.status_code, "body": response.json()}}))
"""


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_an_upload_after_the_request_answers(member, stages, tmp_path):
    _, token = api_token_create(user=member, name="CI")
    xml = junit_xml([("shop.CartTest", "adds_item", "passed"), ("shop.CartTest", "pays", "failed")])
    with solo_worker(tmp_path) as worker:
        answered = subprocess.run(  # noqa: S603
            [sys.executable, "-c", UPLOAD.format(xml=xml, token=token)],
            cwd=worker.base,
            env=worker.env,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        answer = json.loads(answered.stdout.strip().splitlines()[-1])
        assert answer["status"] == 202, answer
        assert answer["body"]["status"] == "queued", "the request does not wait for the worker"
        upload_id = answer["body"]["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            upload = ResultUpload.objects.get(pk=upload_id)
            if upload.status != "queued":
                break
            time.sleep(0.3)
        worker_log = worker.log()
        assert upload.status == "done", worker_log
        assert (upload.passed, upload.failed) == (1, 1)
        assert TrackedTest.objects.filter(stage__name="Integration").count() == 2
        assert not ResultFile.objects.exists()
        assert "evidence.process_upload" in worker_log
