"""CSV import: preview with errors by line and column, then an all-or-nothing, idempotent import."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from escapes import csv_import as csv_module
from escapes.csv_import import CsvImportRefused, csv_import, csv_preview
from escapes.models import Category, Escape, Severity, Source
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

IMPORT_URL = "/t/checkout/escapes/import/"
HEADER = "title,detected_at,merged_at,released_at,category,stage,severity,component,key"


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def detected_after(release, days: int = 2) -> str:
    """A detection `days` after the release, as a CSV cell in team time: the release fixture
    is "10 days ago", so a fixed date would fall before it (or in the future) on some day."""
    moment = timezone.localtime(release.released_at + timedelta(days=days), release.team.tzinfo)
    return f"{moment:%Y-%m-%dT%H:%M}"


GOOD = csv_bytes(
    "Cart total wrong,2025-03-14T09:30,2025-03-01T10:00,2025-03-10T08:00,"
    "coverage_gap,E2E,high,cart,",
    "Search empty,2025-03-15T09:30,,,Environment Mismatch,integration,,search,",
)


# --- preview --------------------------------------------------------------------------------


def test_preview_parses_every_row_and_saves_nothing(team, stages):
    preview = csv_preview(team, GOOD)

    assert preview.problems == []
    assert (preview.new_count, preview.existing_count, preview.error_count) == (2, 0, 0)
    assert preview.importable
    first, second = preview.rows
    assert first.line == 2
    assert first.data["stage"] == stages[2]
    assert first.data["category"] == Category.COVERAGE_GAP
    assert first.data["severity"] == Severity.HIGH
    # No offset: team time (Europe/Berlin, UTC+1 in March).
    assert first.data["detected_at"] == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)
    assert second.data["category"] == Category.ENVIRONMENT_MISMATCH
    assert second.data["stage"] == stages[1]
    assert first.external_id.startswith("sha256:")
    assert not Escape.objects.exists()


def test_preview_reports_errors_by_line_and_column(team, stages):
    content = csv_bytes(
        "Fine,2025-03-14T09:30,,,,,,,",
        "Future,2999-01-01T00:00,,,,,,,",
        "Bad date,14/03/2025,,,,,,,",
        "Bad category,2025-03-14T09:30,,,blame,,,,",
        "Bad stage,2025-03-14T09:30,,,,Manual QA,,,",
        ",2025-03-14T09:30,,,,,,,",
        "Before merge,2025-03-01T09:30,2025-03-02T09:30,,,,,,",
        "Before release,2025-03-01T09:30,,2025-03-02T09:30,,,,,",
        "x" * 201 + ",2025-03-14T09:30,,,,,,,",
    )

    preview = csv_preview(team, content)

    errors = [message for row in preview.rows for message in row.error_messages()]
    assert "line 3, detected_at: This time is in the future." in errors
    assert any(e.startswith("line 4, detected_at: Not an ISO 8601 time") for e in errors)
    assert any(e.startswith("line 5, category: Unknown category") for e in errors)
    assert any(e.startswith("line 6, stage: Unknown stage") for e in errors)
    assert "line 7, title: This column is required." in errors
    assert "line 8, detected_at: Detected before the change was merged: check both times." in errors
    assert (
        "line 9, detected_at: Detected before its release reached production: "
        "that is not an escape." in errors
    )
    assert "line 10, title: Ensure this value has at most 200 characters (it has 201)." in errors
    assert (preview.new_count, preview.error_count) == (1, 8)
    assert not preview.importable


def test_preview_accepts_offsets_z_and_header_names_in_any_case(team):
    content = csv_bytes(
        "Offset,2025-03-14T09:30:00+05:00",
        "Zulu,2025-03-14T09:30:00Z",
        header="Title,Detected At",
    )

    preview = csv_preview(team, content)

    assert preview.problems == []
    assert [row.data["detected_at"] for row in preview.rows] == [
        datetime(2025, 3, 14, 4, 30, tzinfo=UTC),
        datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
    ]


def test_preview_tolerates_a_byte_order_mark_and_crlf(team):
    content = "\ufefftitle,detected_at\r\nWith BOM,2025-03-14T09:30\r\n".encode()

    preview = csv_preview(team, content)

    assert preview.problems == []
    assert preview.rows[0].values["title"] == "With BOM"


def test_a_release_must_exist_and_fills_the_release_time(team, release):
    detected = detected_after(release)
    content = csv_bytes(
        f"Known release,{detected},{release.version}",
        f"Unknown release,{detected},9.9.9",
        header="title,detected_at,release",
    )

    known, unknown = csv_preview(team, content).rows

    assert known.state == "new"
    assert known.data["release"] == release
    assert unknown.errors["release"] == ["Unknown release '9.9.9'; add the release first."]


def test_a_release_of_another_team_is_unknown(team, other_team):
    other_team.releases.create(version="their-1", released_at=datetime(2025, 1, 1, tzinfo=UTC))
    content = csv_bytes("Theirs,2025-03-14T09:30,their-1", header="title,detected_at,release")

    (row,) = csv_preview(team, content).rows

    assert row.state == "error"
    assert "release" in row.errors


def test_a_row_with_the_wrong_number_of_fields_is_an_error(team):
    content = csv_bytes("Too many,2025-03-14T09:30,extra", header="title,detected_at")

    (row,) = csv_preview(team, content).rows

    assert row.error_messages() == ["line 2: This row has 3 fields; the header has 2."]


def test_a_quoted_field_over_several_lines_keeps_line_numbers_right(team):
    content = csv_bytes(
        'Multi,2025-03-14T09:30,"line one\nline two"',
        "Future,2999-01-01T00:00,",
        header="title,detected_at,description",
    )

    multi, future = csv_preview(team, content).rows

    assert multi.values["description"] == "line one\nline two"
    assert (multi.line, future.line) == (2, 4)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "The file is empty."),
        (b"  \n\n", "The file is empty."),
        ("title,detected_at\nCaf\xe9,2025-03-14T09:30\n".encode("latin-1"), "not UTF-8"),
        (bytes(range(256)) * 4, "not UTF-8"),
        (b"title,detected_at\n\x00\x00,2025-03-14\n", "NUL bytes"),
        (b"title,component\nNo time,cart\n", "Missing required column(s): detected_at."),
        (b"detected_at\n2025-03-14T09:30\n", "Missing required column(s): title."),
        (b"title,detected_at,owner\nA,2025-03-14T09:30,me\n", "Unknown column(s): 'owner'"),
        (b"title,detected_at,Title\nA,2025-03-14T09:30,B\n", "Column(s) given twice: title."),
        (b"title,detected_at\n", "The file has a header but no rows."),
        (b'title,detected_at\n"unterminated,2025-03-14T09:30\n', "the CSV cannot be read"),
        (b"\n\n\n", "The file is empty."),
    ],
)
def test_a_malformed_file_is_one_clear_problem(team, content, problem):
    preview = csv_preview(team, content)

    assert any(problem in p for p in preview.problems), preview.problems
    assert preview.rows == []
    assert not preview.importable


@override_settings(LEAKSEAL_CSV_MAX_ROWS=3)
def test_too_many_rows_is_refused(team):
    content = csv_bytes(
        *[f"Row {i},2025-03-14T09:30" for i in range(4)], header="title,detected_at"
    )

    preview = csv_preview(team, content)

    assert preview.problems == ["The file has more than 3 rows; split it."]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_too_large_a_file_is_refused(team):
    content = csv_bytes(
        *[f"Row {i},2025-03-14T09:30" for i in range(10)], header="title,detected_at"
    )

    assert "The file is larger than 100" in csv_preview(team, content).problems[0]


# --- import ---------------------------------------------------------------------------------


def test_import_creates_every_new_row_as_a_csv_escape(team, member, stages):
    result = csv_import(team, GOOD, member)

    assert len(result.created) == 2
    cart = Escape.objects.get(title="Cart total wrong")
    assert {e.pk for e in result.created} == set(Escape.objects.values_list("pk", flat=True))
    assert cart.team == team
    assert cart.created_at is not None
    assert cart.source == Source.CSV
    assert cart.created_by == member
    assert cart.stage == stages[2]
    assert cart.component == "cart"
    assert cart.external_id.startswith("sha256:")


def test_importing_the_same_file_twice_creates_nothing_twice(team, member):
    csv_import(team, GOOD, member)

    preview = csv_preview(team, GOOD)
    second = csv_import(team, GOOD, member)

    assert (preview.new_count, preview.existing_count) == (0, 2)
    assert second.created == []
    assert second.existing_count == 2
    assert Escape.objects.count() == 2


def test_the_same_rows_reordered_or_with_other_header_case_are_recognised(team, member):
    csv_import(team, GOOD, member)
    reordered = csv_bytes(
        "Search empty,2025-03-15T09:30,,,environment_mismatch,Integration,,search,",
        "Cart total wrong,2025-03-14T08:30:00Z,2025-03-01T10:00,2025-03-10T08:00,"
        "Coverage Gap,e2e,High,cart,",
        header=HEADER.upper(),
    )

    assert csv_preview(team, reordered).existing_count == 2


def test_a_key_column_identifies_rows(team, member):
    csv_import(
        team, csv_bytes("Keyed,2025-03-14T09:30,K-1", header="title,detected_at,key"), member
    )
    edited = csv_bytes("Keyed, retitled,2025-03-14T09:30,K-1", header="title,detected_at,key")

    preview = csv_preview(team, edited.replace(b"Keyed, retitled", b'"Keyed, retitled"'))

    assert preview.existing_count == 1
    assert Escape.objects.get().external_id == "K-1"


def test_duplicate_rows_in_one_file_count_once(team, member):
    row = "Twice,2025-03-14T09:30,,,,,,,"
    content = csv_bytes(row, row)

    preview = csv_preview(team, content)
    result = csv_import(team, content, member)

    assert (preview.new_count, preview.duplicate_count) == (1, 1)
    assert len(result.created) == 1
    assert Escape.objects.count() == 1


def test_one_key_on_two_different_rows_is_an_error(team):
    content = csv_bytes(
        "One,2025-03-14T09:30,K", "Two,2025-03-14T09:30,K", header="title,detected_at,key"
    )

    preview = csv_preview(team, content)

    assert preview.rows[1].error_messages() == [
        "line 3, key: Line 2 has this key with other values."
    ]


def test_a_file_with_errors_imports_nothing(team, member):
    content = csv_bytes("Good,2025-03-14T09:30,,,,,,,", "Future,2999-01-01T00:00,,,,,,,")

    with pytest.raises(CsvImportRefused) as refused:
        csv_import(team, content, member)

    assert refused.value.preview.error_count == 1
    assert not Escape.objects.exists()


def test_a_conflict_while_writing_rolls_back_every_row(team, member, monkeypatch):
    """Another import commits row 2 between our check and our insert: row 1 is undone too."""
    real_preview = csv_module.csv_preview
    raced: list[bool] = []

    def preview_then_race(team, content, folds=None):
        preview = real_preview(team, content, folds)
        if raced:
            return preview
        raced.append(True)
        second = preview.rows[1]
        Escape.objects.create(
            team=team,
            title="Imported by another tab",
            detected_at=second.data["detected_at"],
            source=Source.CSV,
            external_id=second.external_id,
        )
        return preview

    monkeypatch.setattr(csv_module, "BATCH_SIZE", 1)
    monkeypatch.setattr(csv_module, "csv_preview", preview_then_race)

    with pytest.raises(CsvImportRefused) as refused:
        csv_import(team, GOOD, member)

    assert "being imported at the same time" in refused.value.preview.problems[-1]
    assert not Escape.objects.exists()


def test_escapes_imported_by_another_team_do_not_count_as_already_imported(
    team, other_team, member
):
    content = csv_bytes("Shared,2025-03-14T09:30,K", header="title,detected_at,key")
    Escape.objects.create(
        team=other_team,
        title="Shared",
        detected_at=datetime(2025, 3, 14, tzinfo=UTC),
        source=Source.CSV,
        external_id="K",
    )

    assert csv_preview(team, content).new_count == 1


# --- views ----------------------------------------------------------------------------------


def upload(content: bytes, name: str = "escapes.csv") -> dict:
    return {"file": SimpleUploadedFile(name, content, content_type="text/csv")}


def test_import_page_documents_the_columns_and_offers_a_template(member):
    html = client_for(member).get(IMPORT_URL).content.decode()

    for column in ("title", "detected_at", "merged_at", "stage", "release", "tracker_url", "key"):
        assert f"<code>{column}</code>" in html
    assert reverse("escape_import_template", kwargs={"team": "checkout"}) in html
    assert 'enctype="multipart/form-data"' in html


def test_the_template_downloads_as_csv_and_previews_cleanly(member, team):
    response = client_for(member).get(
        reverse("escape_import_template", kwargs={"team": "checkout"})
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("title,detected_at,merged_at")
    assert len(lines) == 2
    preview = csv_preview(team, response.content)
    assert (preview.new_count, preview.error_count, preview.problems) == (1, 0, [])


def test_preview_shows_the_table_and_counts_and_saves_nothing(member):
    response = client_for(member).post(IMPORT_URL, upload(GOOD))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>2</strong> new" in html
    assert "<strong>0</strong> already imported" in html
    assert "<strong>0</strong> with errors" in html
    assert "Cart total wrong" in html
    assert "Import 2 escapes" in html
    assert not Escape.objects.exists()


def test_preview_with_errors_lists_them_and_offers_no_import(member):
    content = csv_bytes("Good,2025-03-14T09:30,,,,,,,", "Future,2999-01-01T00:00,,,,,,,")

    response = client_for(member).post(IMPORT_URL, upload(content))

    html = response.content.decode()
    assert "line 3, detected_at: This time is in the future." in html
    assert "<strong>1</strong> with errors" in html
    assert 'name="digest"' not in html
    assert not Escape.objects.exists()


def test_upload_then_import_creates_the_escapes_once(member, team):
    client = client_for(member)
    preview = client.post(IMPORT_URL, upload(GOOD))
    digest = preview.context["confirm_form"].initial["digest"]

    response = client.post(IMPORT_URL, {"digest": digest})

    assert response.status_code == 302
    assert response.headers["Location"] == "/t/checkout/escapes/"
    assert Escape.objects.filter(team=team, source=Source.CSV).count() == 2
    # The confirmation is spent: replaying it imports nothing more.
    replay = client.post(IMPORT_URL, {"digest": digest}, follow=True)
    assert "upload the file again" in replay.content.decode()
    assert Escape.objects.count() == 2
    # Uploading the same file again previews as already imported.
    again = client.post(IMPORT_URL, upload(GOOD)).content.decode()
    assert "<strong>2</strong> already imported" in again
    assert "Nothing new to import" in again


def test_import_reports_how_many_were_created(member):
    client = client_for(member)
    digest = client.post(IMPORT_URL, upload(GOOD)).context["confirm_form"].initial["digest"]

    page = client.post(IMPORT_URL, {"digest": digest}, follow=True).content.decode()

    assert "Imported 2 escape(s)." in page


def test_a_digest_that_was_not_previewed_imports_nothing(member):
    client = client_for(member)
    client.post(IMPORT_URL, upload(GOOD))

    response = client.post(IMPORT_URL, {"digest": "0" * 64}, follow=True)

    assert "upload the file again" in response.content.decode()
    assert not Escape.objects.exists()


def test_import_refuses_rows_that_became_invalid_after_preview(member, team, release):
    content = csv_bytes(
        f"Tied to release,{detected_after(release)},{release.version}",
        header="title,detected_at,release",
    )
    client = client_for(member)
    digest = client.post(IMPORT_URL, upload(content)).context["confirm_form"].initial["digest"]
    release.delete()

    response = client.post(IMPORT_URL, {"digest": digest})

    assert response.status_code == 200
    assert "line 2, release: Unknown release" in response.content.decode()
    assert not Escape.objects.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        "title;detected_at\nA;2025\n".encode("utf-16"),
        b"no,header,we,know\n1,2,3,4\n",
        b'title,detected_at\n"open quote,2025-03-14\n',
    ],
)
def test_a_malformed_upload_is_a_message_never_a_500(member, content):
    response = client_for(member).post(IMPORT_URL, upload(content))

    assert response.status_code == 200
    assert (
        'class="msg-error"' in response.content.decode()
        or 'class="errorlist' in response.content.decode()
    )
    assert not Escape.objects.exists()


def test_posting_without_a_file_asks_for_one(member):
    response = client_for(member).post(IMPORT_URL, {})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=50)
def test_an_oversized_upload_is_refused_before_parsing(member):
    response = client_for(member).post(IMPORT_URL, upload(GOOD))

    assert "The file is larger than 50" in response.content.decode()
    assert not Escape.objects.exists()


def test_viewer_may_not_import(viewer):
    client = client_for(viewer)

    assert client.get(IMPORT_URL).status_code == 403
    assert client.post(IMPORT_URL, upload(GOOD)).status_code == 403
    assert client.post(IMPORT_URL, {"digest": "0" * 64}).status_code == 403
    assert not Escape.objects.exists()


def test_viewer_may_download_the_template(viewer):
    url = reverse("escape_import_template", kwargs={"team": "checkout"})

    assert client_for(viewer).get(url).status_code == 200


def test_outsider_gets_404_on_import_and_template(outsider):
    client = client_for(outsider)
    template_url = reverse("escape_import_template", kwargs={"team": "checkout"})

    assert client.get(IMPORT_URL).status_code == 404
    assert client.post(IMPORT_URL, upload(GOOD)).status_code == 404
    assert client.get(template_url).status_code == 404


def test_anonymous_is_sent_to_sign_in_on_import(client, team):
    response = client.post(IMPORT_URL, upload(GOOD))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


def test_import_and_template_refuse_other_methods(member):
    client = client_for(member)
    template_url = reverse("escape_import_template", kwargs={"team": "checkout"})

    assert client.put(IMPORT_URL).status_code == 405
    assert client.post(template_url).status_code == 405


def test_a_preview_digest_from_another_team_is_not_honoured(member, owner, team, other_team):
    from teams.models import Role
    from teams.services import membership_set

    membership_set(team=other_team, user=member, role=Role.MEMBER)
    client = client_for(member)
    digest = client.post(IMPORT_URL, upload(GOOD)).context["confirm_form"].initial["digest"]

    response = client.post("/t/search/escapes/import/", {"digest": digest}, follow=True)

    assert "upload the file again" in response.content.decode()
    assert not Escape.objects.exists()
