"""The allocation API's OpenAPI 3.1 description (served at /openapi.json; a test validates it against the spec).

The dimension and idle-policy names come from outputs/allocation.py, so the description cannot drift from what the
query accepts. Imports no Dagster.
"""

from __future__ import annotations

from pipelines.outputs.allocation import ADDITIVE, DIMENSIONS, IDLE_SHARE_SQL, LABEL_PREFIX

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "A parameter that cannot be used; `error` says which and what is allowed.",
        401: "INFERCOST_API_TOKEN is set and the request has no matching `Authorization: Bearer` header.",
        503: "No published warehouse yet (run `infercost materialize`), or it lacks a table this endpoint reads.",
    }
    return {str(c): _json(_ERROR, text[c]) for c in codes}


_PARAMETERS = [
    {
        "name": "window",
        "in": "query",
        "required": False,
        "description": "Whole UTC days: `START,END` (dates or RFC 3339 midnights UTC, END exclusive, e.g. "
        "`2024-05-01T00:00:00Z,2024-05-02T00:00:00Z`), `Nd` (the N days ending with the latest day in the "
        "warehouse, e.g. `7d`), `latest` (the default), `today` or `yesterday` (UTC).",
        "schema": {"type": "string", "minLength": 1, "default": "latest"},
        "examples": {"range": {"value": "2026-11-01,2026-11-08"}, "week": {"value": "7d"}},
    },
    {
        "name": "aggregate",
        "in": "query",
        "required": False,
        "description": f"Comma-separated dimensions to group by, any of {', '.join(DIMENSIONS)}, or "
        f"`{LABEL_PREFIX}<key>` for a request label (INFERCOST_REQUEST_LABELS). Empty: one row for the whole window.",
        "schema": {"type": "string", "default": ""},
        "examples": {"model": {"value": "model"}, "chargeback": {"value": "tenant,day"}},
    },
    {
        "name": "idle_policy",
        "in": "query",
        "required": False,
        "description": "How idle cost reaches requests: `proportional` (to direct cost), `even` or `none`. Idle "
        "no request takes is returned as rows with `idle_unallocated: true`. Default: the policy the warehouse "
        "was built with.",
        "schema": {"type": "string", "enum": list(IDLE_SHARE_SQL)},
    },
]

_NUMBER = {"type": ["number", "null"]}
_ROW = {
    "type": "object",
    "description": "One group (its dimension values as keys), or unallocated idle cost (`idle_unallocated`; "
    "`__idle__` for dimensions a device has not, such as model or tenant).",
    "properties": {
        "idle_unallocated": {"type": "boolean"},
        **{m: _NUMBER for m in ADDITIVE},
        "cost_per_1m_output_tokens_usd": _NUMBER,
        "j_per_output_token": _NUMBER,
    },
    "required": ["idle_unallocated", *ADDITIVE],
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}
_ALLOCATION = {
    "type": "object",
    "properties": {
        "window": {
            "type": "object",
            "properties": {
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "days": {"type": "integer"},
            },
            "required": ["start", "end", "days"],
        },
        "latest_day": {"type": ["string", "null"], "format": "date"},
        "aggregate": {"type": "array", "items": {"type": "string"}},
        "idle_policy": {"type": "string", "enum": list(IDLE_SHARE_SQL)},
        "warehouse_idle_policy": {"type": "string"},
        "currency": {"type": "string", "const": "USD"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/AllocationRow"}},
        "totals": {"type": "object", "additionalProperties": _NUMBER},
    },
    "required": ["window", "aggregate", "idle_policy", "currency", "data", "totals"],
}


def openapi_spec(secured: bool) -> dict:
    """The description; with ``secured``, every endpoint but /healthz names the bearer scheme."""
    security = [{"bearer": []}] if secured else []
    paths = {
        "/allocation": {
            "get": {
                "summary": "Cost, energy, tokens and emissions over a window, grouped by dimensions",
                "operationId": "allocation",
                "parameters": _PARAMETERS,
                "security": security,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Allocation"}, "The allocation."),
                    **_errors(400, 401, 503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus gauges of the latest day per model",
                "operationId": "metrics",
                "security": security,
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 503),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness, and whether a published warehouse is there (no token needed)",
                "operationId": "healthz",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The server runs.")},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "operationId": "openapi",
                "security": security,
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1."), **_errors(401)},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "infercost allocation API",
            "version": "1.0.0",
            "description": "Read-only cost allocation of self-hosted inference, from the published warehouse copy.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Allocation": _ALLOCATION, "AllocationRow": _ROW, "Error": _error_schema()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _error_schema() -> dict:
    return {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
