"""The apps' dependencies point one way and no two modules import each other (docs/architecture.md).

Imports are read from the source, lazy ones inside functions included: a circle hidden in a
function body is still a circle.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "config",
    "audit",
    "signin",
    "teams",
    "escapes",
    "notices",
    "retros",
    "integrations",
    "insights",
    "evidence",
    "demo",
)

# Which apps each app may import. config wires everything (urls, API) and offers
# registered_task; demo builds on every app; nothing imports demo. audit is the lowest: every
# app that changes something worth auditing calls audit.services.record inside its own
# transaction, and audit imports none of them, only config's csv_safe (every CSV file the app
# writes goes through it). signin (password sign-in protection and single
# sign-on) sits on teams, for the team joins a group claim maps; only config imports it.
# notices (the outbox of email, chat and Confluence messages) sits on teams: the apps whose
# changes cause notices enqueue them, and the calendar jobs live in the app that owns the data.
ALLOWED = {
    "audit": {"config"},
    "signin": {"teams"},
    "teams": {"audit"},
    "notices": {"teams", "audit", "config"},
    "escapes": {"teams", "audit", "config"},
    "retros": {"teams", "escapes", "audit", "config", "notices"},
    "integrations": {"teams", "escapes", "retros", "audit", "config", "notices"},
    "insights": {"teams", "escapes", "retros", "config", "notices"},
    # evidence (CI test results) reads the register and writes measured StageCatch rows; the
    # board loads its escape panel by URL, so retros does not import it.
    "evidence": {"teams", "escapes", "retros", "audit", "config"},
    "demo": {"teams", "escapes", "retros", "insights", "evidence", "config", "notices"},
    "config": {
        "teams",
        "escapes",
        "retros",
        "integrations",
        "insights",
        "evidence",
        "signin",
        "notices",
    },
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules())


def test_no_two_modules_import_each_other(graph):
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_apps_import_only_the_apps_below_them(graph):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if (app := module.split(".")[0]) != (other := target.split(".")[0])
        and other not in ALLOWED[app]
    )
    assert wrong == []


# --- Services and selectors are the only doors to an app's data (docs/architecture.md).

MANAGERS = {"objects", "_default_manager"}

# Module → "<Model>.<manager>.<method>" it may call on another app's model. Only what cannot
# reasonably go through a service: the volume generator (`make volume`, benchmarks) writes
# hundreds of thousands of rows with given times in batches, on purpose around the services'
# per-row validation, locks and signals (it recomputes the rollups itself afterwards).
CROSS_APP_MANAGER_ALLOWED = {
    "demo.volume.writers": {
        "Escape.objects.bulk_create",
        "PreventativeAction.objects.bulk_create",
    },
    # The demo's earlier retro is history: its creation and due dates lie in the past, which
    # no service sets (a due date set in the past is refused).
    "demo.seed": {
        "Retrospective.objects.filter",
        "PreventativeAction.objects.filter",
    },
    "demo.volume.releases": {
        "Release.objects.bulk_create",
        "StageCatch.objects.bulk_create",
    },
}


def models_by_app() -> dict[str, set[str]]:
    """The classes each app's models.py defines (choices too: they have no manager)."""
    found: dict[str, set[str]] = {}
    for app in APPS:
        path = ROOT / app / "models.py"
        if path.exists():
            tree = ast.parse(path.read_text())
            found[app] = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return found


def foreign_manager_uses(name: str, source: str, models: dict[str, set[str]]) -> set[str]:
    """`<Model>.<manager>.<method>` (or `<Model>.<manager>`) of another app's model in source.

    `Model.objects.none()` is left out: it is an empty placeholder (a form field's queryset
    before __init__ sets the team's), never a query.
    """
    app = name.split(".")[0]
    owner = {model: a for a, names in models.items() if a != app for model in names}
    owner = {model: a for model, a in owner.items() if model not in models.get(app, set())}
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in MANAGERS):
            continue
        base = node.value
        model = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
        if model not in owner:
            continue
        above = parents.get(node)
        method = above.attr if isinstance(above, ast.Attribute) and above is not node else None
        if method == "none":
            continue
        uses.add(f"{model}.{node.attr}" + (f".{method}" if method else ""))
    return uses


def test_apps_reach_other_apps_data_only_through_their_services_and_selectors():
    models = models_by_app()
    wrong = sorted(
        f"{name} uses {use}"
        for name, path in project_modules().items()
        for use in foreign_manager_uses(name, path.read_text(), models)
        if use not in CROSS_APP_MANAGER_ALLOWED.get(name, set())
    )
    assert wrong == []


def test_the_door_check_sees_a_query_of_another_apps_model():
    models = {"escapes": {"Escape"}, "retros": {"Why"}}
    source = (
        "from escapes.models import Escape\n"
        "from escapes import models\n"
        "Escape.objects.filter(team_id=1)\n"
        "models.Escape._default_manager.count()\n"
        "Escape.objects.none()\n"
        "Why.objects.all()\n"
    )
    assert foreign_manager_uses("retros.selectors", source, models) == {
        "Escape.objects.filter",
        "Escape._default_manager.count",
    }
