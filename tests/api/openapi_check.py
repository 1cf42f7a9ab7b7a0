"""Check every answer the API tests receive against the published OpenAPI document.

tests/api/conftest.py wraps django.test.Client, so each response to a path under /api/v1/
is looked up in /api/v1/openapi.json: its operation (or, for a path no operation has, a JSON
404/405), its status code among the operation's documented responses, and its JSON body
against that response's schema (JSON Schema 2020-12, the dialect of OpenAPI 3.1, checked with
jsonschema, already a dev dependency for tests/fakes/spec.py).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

PREFIX = "/api/v1"
UNCHECKED = {f"{PREFIX}/openapi.json", f"{PREFIX}/docs"}


class ApiSpecViolation(AssertionError):
    pass


@cache
def document() -> dict[str, Any]:
    from config.api import api

    doc: dict[str, Any] = json.loads(json.dumps(api.get_openapi_schema(), default=str))
    return doc


@cache
def _operations() -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    found = []
    for template, item in document()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        for method, operation in item.items():
            found.append((re.compile(f"^{pattern}$"), method.upper(), operation))
    # Literal paths before templated ones.
    found.sort(key=lambda entry: entry[0].pattern.count("[^/]+"))
    return found


def _validate(schema: dict[str, Any], instance: Any, where: str) -> None:
    root = {"allOf": [schema], "components": document().get("components", {})}
    errors = sorted(
        Draft202012Validator(root).iter_errors(instance), key=lambda e: list(e.absolute_path)
    )
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise ApiSpecViolation(f"{where}: the body at {at} does not match: {first.message}")


def check(method: str, path: str, status: int, content_type: str, body: bytes) -> None:
    """Raise ApiSpecViolation when the answer is not what the document says."""
    if not path.startswith(PREFIX + "/") or path.rstrip("/") in UNCHECKED:
        return
    if status in (301, 302, 308):
        return
    where = f"{method} {path} → {status}"
    if not content_type.startswith("application/json"):
        raise ApiSpecViolation(f"{where}: answered {content_type or 'no type'}, not JSON")
    instance = json.loads(body)
    # The most literal template that matches is the route (/escapes/bulk, not /escapes/{id}).
    route = next((pattern for pattern, _, _ in _operations() if pattern.match(path)), None)
    matching = [(m, op) for pattern, m, op in _operations() if pattern == route]
    operation = next((op for m, op in matching if m == method), None)
    if operation is None:
        # No operation: only the JSON refusals of config/errors.py.
        expected = 405 if matching else 404
        if status != expected:
            raise ApiSpecViolation(f"{where}: no operation answers this; expected {expected}")
        _validate({"$ref": "#/components/schemas/ErrorOut"}, instance, where)
        return
    response = operation["responses"].get(str(status))
    if response is None:
        documented = ", ".join(operation["responses"])
        raise ApiSpecViolation(f"{where}: status {status} is not documented ({documented})")
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        raise ApiSpecViolation(f"{where}: the document gives no JSON schema for it")
    _validate(schema, instance, where)
