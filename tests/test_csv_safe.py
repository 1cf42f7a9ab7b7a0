"""Every CSV file the app writes neutralises formulas (config/csv_safe.py).

People type stage names, components, release versions, titles and audit targets; a cell that
starts with =, +, -, @, a tab or a carriage return is a formula to a spreadsheet.
"""

import ast
import csv
import io
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse

from audit.models import Action
from audit.services import record
from config import csv_safe
from escapes.csv_import import csv_preview
from escapes.models import Escape, Release
from tests.conftest import client_for
from tests.dashboard.test_dashboard_views import RANGE, build_dataset

ROOT = Path(__file__).resolve().parent.parent
FORMULAS = ['=HYPERLINK("http://x.example","y")', "+1+2", "-2+3", "@SUM(A1)", "\tA", "\rA"]


def test_only_csv_safe_makes_a_csv_writer():
    """A new CSV file cannot bypass the neutralising writer: csv.writer lives in one place."""
    makers = []
    for app in ("config", "audit", "signin", "teams", "escapes", "notices", "retros"):
        makers += [*ROOT.joinpath(app).rglob("*.py")]
    for app in ("integrations", "insights", "demo"):
        makers += [*ROOT.joinpath(app).rglob("*.py")]
    found = []
    for path in makers:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("writer", "DictWriter")
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
            ):
                found.append(str(path.relative_to(ROOT)))
    assert found == ["config/csv_safe.py"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_cell_is_quoted_and_read_back(text):
    out = io.StringIO()
    csv_safe.writer(out).writerow([text, "plain", -1.5, 3], numbers=(2, 3))
    row = next(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert row == ["'" + text, "plain", "-1.5", "3"]
    assert csv_safe.uncell(row[0]) == text
    assert csv_safe.uncell("'quoted on purpose") == "'quoted on purpose"


def _cells(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(), newline="")))


def _formula_cells(rows: list[list[str]], skip: tuple[int, ...] = ()) -> list[str]:
    return [
        c
        for r in rows
        for i, c in enumerate(r)
        if i not in skip and c.startswith(csv_safe.FORMULA_START)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", FORMULAS)
def test_the_import_template_quotes_a_stage_named_like_a_formula(member, team, name):
    team.stages.filter(pk=team.stages.order_by("position", "id").first().pk).update(name=name)
    response = client_for(member).get(reverse("escape_import_template", kwargs={"team": team.slug}))
    rows = _cells(response.content)
    assert rows[1][rows[0].index("stage")] == "'" + name
    assert _formula_cells(rows) == []
    # Downloaded and uploaded unchanged, the template still names the stage.
    preview = csv_preview(team, response.content)
    assert preview.error_count == 0, [r.errors for r in preview.rows]
    assert preview.rows[0].data["stage"].name == name


@pytest.mark.django_db
@pytest.mark.parametrize("name", FORMULAS)
def test_the_dashboard_csv_quotes_typed_names_and_keeps_numbers(member, team, name):
    dataset = build_dataset(team)
    team.stages.filter(pk=dataset["a"].stage_id).update(name=name)
    Escape.objects.filter(pk=dataset["a"].pk).update(component=name)
    Release.objects.filter(team=team).update(version=name.strip() or "x")
    response = client_for(member).get(f"/t/{team.slug}/dashboard.csv", RANGE)
    rows = _cells(response.content)
    value = rows[0].index("value")
    assert _formula_cells(rows, skip=(value,)) == []
    assert any(r[1] == "'" + name and r[0] == "stages" for r in rows)
    for r in rows[1:]:
        if r[value]:
            float(r[value])  # a computed number, never quoted


@pytest.mark.django_db
@pytest.mark.parametrize("text", FORMULAS)
def test_the_audit_csv_quotes_every_typed_cell(team, owner, text):
    with transaction.atomic():
        record(team=team, actor=owner, action=Action.RETRO_CLOSED, target=text)
    response = client_for(owner).get(reverse("audit_csv", kwargs={"team": team.slug}))
    rows = _cells(response.content)
    assert rows[1][4] == "'" + text
    assert _formula_cells(rows) == []
