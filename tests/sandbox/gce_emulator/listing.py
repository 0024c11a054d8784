"""List responses: filter, maxResults/pageToken paging, aggregated (per-scope) lists."""
from __future__ import annotations

import base64
import json

from .filters import FilterError, compile_filter
from .store import LINK_BASE, ApiError

MAX_RESULTS = 500


def _bad(field: str, value: str, why: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for field '{field}': '{value}'. {why}")


def page_bounds(query: dict, total_key: str) -> tuple[int, int]:
    raw = query.get("maxResults", str(MAX_RESULTS))
    try:
        size = int(raw)
    except ValueError as exc:
        raise _bad("maxResults", raw, "Must be an integer.") from exc
    if size < 0 or size > MAX_RESULTS:
        raise _bad("maxResults", raw, f"Must be less than or equal to {MAX_RESULTS}")
    if size == 0:
        size = MAX_RESULTS
    offset = 0
    token = query.get("pageToken")
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
            if data["k"] != total_key:
                raise ValueError("token of another list")
            offset = int(data["o"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad("pageToken", token, "The page token is invalid for this list.") from exc
    return offset, size


def next_token(total_key: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": total_key, "o": offset}).encode()).decode().rstrip("=")


def predicate(query: dict):
    try:
        return compile_filter(query.get("filter"))
    except FilterError as exc:
        raise ApiError(400, "invalid", str(exc)) from exc


def _as_is(resource: dict) -> dict:
    return resource


def list_response(kind: str, collection: str, items: list[dict], query: dict, present=_as_is) -> dict:
    """`present` turns a stored resource into its response form; applied to the page only."""
    keep = predicate(query)
    selected = [i for i in sorted(items, key=lambda r: r["name"]) if keep(i)]
    key = f"{collection}|{query.get('filter', '')}"
    offset, size = page_bounds(query, key)
    body = {"kind": kind, "id": collection, "selfLink": LINK_BASE + collection}
    page = [present(i) for i in selected[offset:offset + size]]
    if page:
        body["items"] = page
    if offset + size < len(selected):
        body["nextPageToken"] = next_token(key, offset + size)
    return body


def aggregated_response(kind: str, plural: str, project: str, scoped: dict[str, list[dict]],
                        all_scopes: list[str], query: dict, present=_as_is) -> dict:
    """scoped: scope ("zones/us-east1-b") -> resources. Scopes without results on the page get the
    NO_RESULTS_ON_PAGE warning as on GCE."""
    keep = predicate(query)
    flat = [(scope, r) for scope in sorted(scoped) for r in sorted(scoped[scope], key=lambda r: r["name"]) if keep(r)]
    collection = f"projects/{project}/aggregated/{plural}"
    key = f"{collection}|{query.get('filter', '')}"
    offset, size = page_bounds(query, key)
    page = flat[offset:offset + size]
    items: dict[str, dict] = {}
    for scope in all_scopes:
        items[scope] = {"warning": {
            "code": "NO_RESULTS_ON_PAGE",
            "message": f"There are no results for scope '{scope}' on this page.",
            "data": [{"key": "scope", "value": scope}]}}
    for scope, resource in page:
        entry = items.setdefault(scope, {})
        entry.pop("warning", None)
        entry.setdefault(plural, []).append(present(resource))
    body = {"kind": kind, "id": collection, "items": items, "selfLink": LINK_BASE + collection}
    if offset + size < len(flat):
        body["nextPageToken"] = next_token(key, offset + size)
    return body
