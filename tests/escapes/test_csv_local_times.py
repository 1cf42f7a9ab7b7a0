"""CSV import: local times the clocks skip are refused, ones that happen twice are asked about
in the preview, and files separated by `;` or tabs are read (issue 13, point 8).

The team is in Europe/Berlin: on 30 Mar 2025 clocks jump from 02:00 to 03:00, on 26 Oct 2025
they go back from 03:00 to 02:00 (02:30 happens at 00:30 and again at 01:30 UTC).
"""

from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from escapes.csv_import import CsvImportRefused, csv_import, csv_preview
from escapes.models import Escape
from teams.services import team_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

IMPORT_URL = "/t/checkout/escapes/import/"


def file(*lines: str, header: str = "title,detected_at,merged_at") -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def test_a_time_the_clocks_skip_is_an_error_naming_row_column_and_why(team):
    preview = csv_preview(team, file("Skipped,2025-03-30T02:30,"))

    assert preview.error_count == 1 and not preview.importable
    assert preview.rows[0].error_messages() == [
        "line 2, detected_at: 02:30 on 30 Mar 2025 does not exist in Europe/Berlin: clocks "
        "jump from 02:00 to 03:00; give the time with its offset, e.g. 2025-03-30T02:30+01:00."
    ]


def test_the_same_time_with_an_offset_or_outside_the_gap_is_fine(team):
    preview = csv_preview(
        team,
        file(
            "With offset,2025-03-30T03:30+02:00,",
            "Before,2025-03-30T01:59,",
            "After,2025-03-30T03:00,",
        ),
    )
    assert preview.error_count == 0 and preview.ambiguities == []
    assert preview.rows[2].data["detected_at"] == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_a_time_that_happens_twice_is_asked_about_and_nothing_is_saved(team, member):
    content = file("Twice,2025-10-26T04:00,2025-10-26T02:30")
    preview = csv_preview(team, content)

    assert preview.importable and preview.new_count == 1
    [ambiguity] = preview.unresolved
    assert (ambiguity.line, ambiguity.column) == (2, "merged_at")
    assert ambiguity.message == (
        "02:30 on 26 Oct 2025 happens twice in Europe/Berlin: clocks go back from 03:00 to "
        "02:00; choose which one below"
    )
    assert [label for _, label in ambiguity.options] == [
        "the first, UTC+02:00 (before the clocks go back)",
        "the second, UTC+01:00 (after the clocks go back)",
    ]
    with pytest.raises(CsvImportRefused):
        csv_import(team, content, None)
    assert not Escape.objects.exists()

    client = client_for(member)
    html = client.post(
        IMPORT_URL, {"file": SimpleUploadedFile("e.csv", content, content_type="text/csv")}
    ).content.decode()
    assert "happens twice in Europe/Berlin" in html
    assert "new; merged_at: which time? (above)" in html
    assert html.count('name="fold-2-merged_at"') == 2 and " required" in html
    digest = html.split('name="digest" value="')[1].split('"')[0]

    refused = client.post(IMPORT_URL, {"digest": digest})
    assert "Nothing was imported: choose for every time below." in refused.content.decode()
    assert not Escape.objects.exists()

    done = client.post(IMPORT_URL, {"digest": digest, "fold-2-merged_at": "1"})
    assert done.status_code == 302
    assert Escape.objects.get().merged_at == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(("fold", "utc_hour"), [(0, 0), (1, 1)])
def test_the_choice_picks_the_earlier_or_later_moment(team, fold, utc_hour):
    result = csv_import(team, file("Twice,2025-10-26T02:30,"), None, {"fold-2-detected_at": fold})
    assert result.created[0].detected_at == datetime(2025, 10, 26, utc_hour, 30, tzinfo=UTC)


def test_one_oclock_on_a_new_york_fall_back_night_is_asked_about():
    team = team_create(name="East", slug="east", timezone_name="America/New_York")
    [ambiguity] = csv_preview(team, file("Twice,2025-11-02T01:30,")).unresolved
    assert "clocks go back from 02:00 to 01:00" in ambiguity.message
    skipped = csv_preview(team, file("Gone,2025-03-09T02:30,"))
    assert "clocks jump from 02:00 to 03:00" in skipped.rows[0].error_messages()[0]


@pytest.mark.parametrize("separator", [";", "\t", ","])
def test_semicolon_tab_and_comma_files_are_read(team, separator):
    header = separator.join(["Title", "Detected At", "component"])
    line = separator.join(['"Cart, total; wrong"', "2025-03-14T09:30", "cart"])
    preview = csv_preview(team, file(line, header=header))

    assert preview.problems == [] and preview.error_count == 0
    assert preview.rows[0].data == {
        "title": "Cart, total; wrong",
        "detected_at": datetime(2025, 3, 14, 8, 30, tzinfo=UTC),
        "component": "cart",
    }


def test_an_unknown_column_in_a_semicolon_file_is_still_named(team):
    preview = csv_preview(team, file("a;2025-03-14T09:30;x", header="title;detected_at;colour"))
    assert preview.problems[0].startswith("Unknown column(s): 'colour'.")
