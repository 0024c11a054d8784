"""Compute v1 JSON bodies checked against Google's own discovery document.

The document is the one shipped in the google-api-python-client wheel
(googleapiclient/discovery_cache/documents/compute.v1.json). Checks: every property name is
declared by the schema (unknown fields fail), JSON types match (int64/uint64 are strings),
enum values are declared ones, arrays and maps recurse, `$ref` is resolved.

Strict mode is for what GCE sends (tests validate every response with it); lenient mode is what
GCE's JSON parser accepts in a request (numbers as strings and the reverse), which the emulator
applies to every request body so a client sending an unknown field gets GCE's 400.
Tests import it as `from emulator import discovery_schema`.
"""
from __future__ import annotations

import functools
import json
import pathlib
import re
from typing import Any

import googleapiclient

DOCUMENT = pathlib.Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "compute.v1.json"
INTEGER_STRING = re.compile(r"-?[0-9]+")


class SchemaError(AssertionError):
    """A body does not match its discovery schema; .problems lists each mismatch with its JSON path."""

    def __init__(self, schema_name: str, problems: list[str]):
        super().__init__(f"{schema_name}: " + "; ".join(problems))
        self.schema_name, self.problems = schema_name, problems


@functools.lru_cache(maxsize=1)
def document() -> dict:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def schema(name: str) -> dict:
    try:
        return document()["schemas"][name]
    except KeyError as exc:
        raise KeyError(f"no schema {name!r} in the Compute v1 discovery document") from exc


def problems(schema_name: str, body: Any, lenient: bool = False) -> list[str]:
    """Every mismatch between `body` and the named schema (empty when it conforms)."""
    found: list[str] = []
    _check({"$ref": schema_name}, body, "$", found, lenient)
    return found


def validate(schema_name: str, body: Any) -> None:
    found = problems(schema_name, body)
    if found:
        raise SchemaError(schema_name, found)


def _numeric_text(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"-?[0-9]+(\.[0-9]*)?", value))


def _check(spec: dict, value: Any, path: str, found: list[str], lenient: bool = False) -> None:
    if "$ref" in spec:
        spec = schema(spec["$ref"])
    kind = spec.get("type")
    if kind == "any" or kind is None and "properties" not in spec:
        return
    if lenient and kind in ("integer", "number") and _numeric_text(value):
        return
    if lenient and kind == "string" and spec.get("format") in ("int64", "uint64") and \
            isinstance(value, int) and not isinstance(value, bool):
        return
    if kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: expected string, got {type(value).__name__}")
        elif spec.get("format") in ("int64", "uint64") and not INTEGER_STRING.fullmatch(value):
            found.append(f"{path}: expected a decimal {spec['format']} string, got {value!r}")
        elif "enum" in spec and value not in spec["enum"]:
            found.append(f"{path}: {value!r} is not one of {spec['enum']}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            found.append(f"{path}: expected integer, got {type(value).__name__}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            found.append(f"{path}: expected number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            found.append(f"{path}: expected boolean, got {type(value).__name__}")
    elif kind == "array":
        if not isinstance(value, list):
            found.append(f"{path}: expected array, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(spec.get("items", {}), item, f"{path}[{i}]", found, lenient)
    elif kind == "object" or "properties" in spec:
        if not isinstance(value, dict):
            found.append(f"{path}: expected object, got {type(value).__name__}")
            return
        props = spec.get("properties")
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                _check(props[key], item, f"{path}.{key}", found, lenient)
            elif extra is not None:
                _check(extra, item, f"{path}[{key!r}]", found, lenient)
            else:
                found.append(f"{path}: unknown field {key!r}")
    else:
        found.append(f"{path}: unsupported schema type {kind!r}")


def normalize(schema_name: str, body: Any) -> Any:
    """A lenient-valid request body in GCE's canonical JSON types (int64 as strings, ...)."""
    return _normalize({"$ref": schema_name}, body)


def _normalize(spec: dict, value: Any) -> Any:
    if "$ref" in spec:
        spec = schema(spec["$ref"])
    kind = spec.get("type")
    if kind == "integer" and isinstance(value, str):
        return int(float(value))
    if kind == "number" and isinstance(value, str):
        return float(value)
    if kind == "string" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "array" and isinstance(value, list):
        return [_normalize(spec.get("items", {}), v) for v in value]
    if isinstance(value, dict) and (kind == "object" or "properties" in spec):
        props, extra = spec.get("properties") or {}, spec.get("additionalProperties")
        return {k: _normalize(props[k] if k in props else (extra or {}), v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=1)
def _methods() -> list[tuple[str, re.Pattern, dict]]:
    out = []

    def walk(resources: dict) -> None:
        for res in resources.values():
            for method in res.get("methods", {}).values():
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(method["path"]))
                out.append((method["httpMethod"], re.compile(pattern + "$"), method))
            walk(res.get("resources", {}))
    walk(document()["resources"])
    # Literal segments beat parameters: "aggregated/instances" must not match "zones/{zone}".
    out.sort(key=lambda m: -len(re.sub(r"\{[^}]+\}", "", m[2]["path"])))
    return out


def method_for(http_method: str, path: str) -> dict:
    """The discovery method for an HTTP call; path relative to .../compute/v1/ (no query)."""
    path = path.split("?", 1)[0]
    path = path[path.index("projects/"):] if "projects/" in path else path.lstrip("/")
    for verb, regex, method in _methods():
        if verb == http_method and regex.match(path):
            return method
    raise KeyError(f"no Compute v1 method for {http_method} {path}")


def validate_request(http_method: str, path: str, body: Any) -> None:
    method = method_for(http_method, path)
    if "request" in method:
        validate(method["request"]["$ref"], body)


def validate_response(http_method: str, path: str, body: Any) -> None:
    method = method_for(http_method, path)
    if "response" in method:
        validate(method["response"]["$ref"], body)
