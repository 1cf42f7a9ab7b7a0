"""Check an HTTP exchange against the vendors' OpenAPI files in tests/fakes/specs/.

A fake tracker validates every request it receives and every response it is about to send
with `Spec.check_request` / `Spec.check_response`; a mismatch raises `SpecViolation`, which
the fake answers as a 500 with the reason *and* records, so the test that caused it fails.

Both OpenAPI 3 (Jira) and Swagger 2 (Azure DevOps) are read. Schemas are checked with
jsonschema (draft 4, the dialect both are based on), `$ref`s resolved inside the document;
OpenAPI 3's `nullable` and Swagger's `x-nullable` become `"type": [..., "null"]`, and three
generator quirks of the Azure DevOps files are undone: a list typed as an object (see
`_nullable`), any value typed as an object (`_any_object`), and collections, which the service
wraps as {"count", "value"} while the documents describe the bare list (`check_response`).
Jira Data Center speaks REST v2, which the Cloud document describes under /rest/api/3 with the
same request and response shapes (only v3's `description` is a document instead of text, and
the document leaves issue fields free-form), so /rest/api/2/... is checked as /rest/api/3/....
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The vendors' published files (README.md there says where each comes from);
# tests/integrations/test_fake_specs.py checks them against SHA256SUMS, so they stay unedited.
SPECS = Path(__file__).resolve().parent / "specs"

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


class SpecViolation(AssertionError):
    pass


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pointer: str  # JSON pointer of the operation object in the document
    body: dict[str, Any]  # the operation object
    params: list[dict[str, Any]]  # path-level and operation-level parameters, resolved


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _nullable(value) for key, value in node.items()}
        # Azure DevOps' generator writes a class derived from List<T> (JsonPatchDocument) as
        # "type": "object" with "allOf": [{"type": "array"}], which nothing can satisfy; the
        # service takes and sends a JSON array there.
        if node.get("type") == "object" and any(
            isinstance(sub, dict) and sub.get("type") == "array" for sub in node.get("allOf", [])
        ):
            node.pop("type")
            if not node.get("properties"):
                node.pop("properties", None)
        if (node.get("nullable") is True or node.get("x-nullable") is True) and "type" in node:
            kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
            node["type"] = [*kinds, "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


def _any_object(node: Any) -> Any:
    """Azure DevOps' generator writes a C# `object` (any JSON value) as a bare "type": "object".

    So `WorkItem.fields` reads `"additionalProperties": {"type": "object"}` although every
    work item carries strings and numbers there ("System.Title", "System.Rev"); the schema of
    such a value is made to accept anything. Only for the Swagger 2 (Azure DevOps) files.
    """
    if isinstance(node, dict):
        node = {key: _any_object(value) for key, value in node.items()}
        extra = node.get("additionalProperties")
        if (
            isinstance(extra, dict)
            and set(extra) - {"description"} == {"type"}
            and extra["type"] == "object"
        ):
            node["additionalProperties"] = {}
        return node
    if isinstance(node, list):
        return [_any_object(item) for item in node]
    return node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Spec:
    def __init__(self, filename: str) -> None:
        path = SPECS / filename
        self.name = filename
        self.doc: dict[str, Any] = _nullable(json.loads(path.read_text(encoding="utf-8-sig")))
        self.swagger2 = str(self.doc.get("swagger", "")).startswith("2")
        if self.swagger2:
            self.doc = _any_object(self.doc)
        operation = self.doc.get("definitions", {}).get("JsonPatchOperation", {})
        if "value" in operation.get("properties", {}):
            # "The value for the operation. This is either a primitive or a JToken", typed
            # "object" by the generator: any JSON value.
            operation["properties"]["value"].pop("type", None)
        self.uri = f"urn:leakseal-spec:{filename}"
        self.registry: Registry = Registry().with_resource(
            self.uri, Resource.from_contents(self.doc, default_specification=DRAFT4)
        )
        self.operations: list[tuple[re.Pattern[str], Operation]] = []
        for template, item in self.doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method not in METHODS:
                    continue
                params = [self._deref(p) for p in [*shared, *op.get("parameters", [])]]
                pointer = f"/paths/{_escape(template)}/{method}"
                operation = Operation(method.upper(), template, pointer, op, params)
                self.operations.append((self._pattern(template), operation))
        # Literal paths before templated ones: /board/{id}/sprint, not /board/{id}/{x}.
        self.operations.sort(key=lambda pair: pair[1].template.count("{"))

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        # A template's path part may hold a parameter and literal text: "/workitems/${type}".
        out = ""
        for piece in re.split(r"(\{[^}]+\})", template):
            out += "[^/]+" if piece.startswith("{") else re.escape(piece)
        return re.compile(f"^{out}$")

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            pointer = node["$ref"].lstrip("#")
            found: Any = self.doc
            for part in pointer.strip("/").split("/"):
                found = found[part.replace("~1", "/").replace("~0", "~")]
            node = found
        return node

    def operation(self, method: str, path: str) -> Operation:
        path = re.sub(r"^/rest/api/2/", "/rest/api/3/", path)
        for pattern, operation in self.operations:
            if operation.method == method.upper() and pattern.match(path):
                return operation
        raise SpecViolation(f"{self.name}: no operation {method.upper()} {path}")

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        validator = Draft4Validator({"$ref": f"{self.uri}#{pointer}"}, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            raise SpecViolation(f"{self.name}: {what} at {where}: {first.message}")

    # --- Requests.

    def check_request(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, content_type: str
    ) -> Operation:
        operation = self.operation(method, path)
        where = f"{operation.method} {operation.template}"
        for param in operation.params:
            if param.get("in") == "query" and param.get("required") and param["name"] not in query:
                raise SpecViolation(f"{self.name}: {where} needs query parameter {param['name']}")
        schema_pointer = self._request_schema(operation, content_type)
        if schema_pointer is None:
            if body.strip() and not self._accepts_any_body(operation):
                raise SpecViolation(f"{self.name}: {where} takes no body ({content_type})")
            return operation
        try:
            instance = json.loads(body or b"null")
        except ValueError as exc:
            raise SpecViolation(f"{self.name}: {where} body is not JSON: {exc}") from None
        self._validate(schema_pointer, instance, f"{where} request body")
        return operation

    def _accepts_any_body(self, operation: Operation) -> bool:
        return "requestBody" in operation.body or any(
            p.get("in") == "body" for p in operation.params
        )

    def _request_schema(self, operation: Operation, content_type: str) -> str | None:
        base = content_type.split(";")[0].strip() or "application/json"
        if self.swagger2:
            for index, param in enumerate(operation.body.get("parameters", [])):
                param = self._deref(param)
                if param.get("in") == "body":
                    consumes = operation.body.get("consumes") or self.doc.get("consumes") or []
                    if consumes and base not in consumes:
                        raise SpecViolation(
                            f"{self.name}: {operation.method} {operation.template} "
                            f"consumes {consumes}, not {base}"
                        )
                    return f"{operation.pointer}/parameters/{index}/schema"
            return None
        request_body = operation.body.get("requestBody")
        if not request_body:
            return None
        content = self._deref(request_body).get("content", {})
        if base not in content:
            if not content:
                return None
            raise SpecViolation(
                f"{self.name}: {operation.method} {operation.template} takes "
                f"{sorted(content)}, not {base}"
            )
        if "$ref" in request_body:
            pointer = request_body["$ref"].lstrip("#")
        else:
            pointer = f"{operation.pointer}/requestBody"
        return f"{pointer}/content/{_escape(base)}/schema"

    # --- Responses.

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        operation = self.operation(method, path)
        where = f"{operation.method} {operation.template}"
        responses = operation.body.get("responses", {})
        key = str(status) if str(status) in responses else "default"
        if key not in responses:
            if status < 400:
                raise SpecViolation(f"{self.name}: {where} does not answer {status}")
            return  # error answers: the documents list few of them; the shape is ours
        response = responses[key]
        pointer = f"{operation.pointer}/responses/{_escape(key)}"
        if "$ref" in response:
            pointer = response["$ref"].lstrip("#")
            response = self._deref(response)
        if self.swagger2:
            if "schema" not in response:
                return
            schema_pointer = f"{pointer}/schema"
            if self._deref(response["schema"]).get("type") == "array":
                # Azure DevOps sends every collection wrapped (VssJsonCollectionWrapper):
                # {"count": n, "value": [...]}; its documents describe the bare list.
                if not (
                    isinstance(body, dict)
                    and set(body) == {"count", "value"}
                    and isinstance(body["value"], list)
                    and body["count"] == len(body["value"])
                ):
                    raise SpecViolation(
                        f"{self.name}: {where} {status} response must be a collection "
                        '{"count": n, "value": [...]}'
                    )
                body = body["value"]
        else:
            content = response.get("content", {})
            if "application/json" not in content or "schema" not in content["application/json"]:
                return
            schema_pointer = f"{pointer}/content/application~1json/schema"
        if body is None:
            raise SpecViolation(f"{self.name}: {where} {status} must have a JSON body")
        self._validate(schema_pointer, body, f"{where} {status} response")


@cache
def spec(filename: str) -> Spec:
    return Spec(filename)
