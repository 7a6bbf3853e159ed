"""The OpenAPI pieces of the report identities and their history (`/api/v1/reports`, `/report`). Pure data,
merged into openapi.py's document."""

from __future__ import annotations

from typing import Any

from sigma_exporter.runs.outcomes import OUTCOMES

ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/Error"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_IDENTITY_PARAMS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what} (empty or absent for none; with neither, no identity is named: 404)",
        "schema": {"type": "string", "maxLength": 256},
    }
    for name, what in (("report_group_id", "The group's id"), ("report_id", "The report's id"))
]


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An answer with a JSON body of `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS: dict[str, Any] = {
    "Identity": {
        "type": "object",
        "required": ["report_group_id", "report_id", "last_success", "last_failure"],
        "properties": {
            "report_group_id": {"type": "string"},
            "report_id": {"type": "string"},
            "kind": {"enum": ["report", "group"]},
            "report_name": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "last_success": _NULLABLE_NUMBER,
            "last_failure": _NULLABLE_NUMBER,
            "last_duration_seconds": _NULLABLE_NUMBER,
            "runs": {"type": "object", "additionalProperties": {"type": "integer"}},
            "missed": {"type": "boolean", "description": "Its latest expected run has not started in grace"},
            "overdue": {"type": "boolean", "description": "A run is active longer than max_duration"},
            "history": {"type": "string", "description": "The path of its history"},
            "page": {"type": "string", "description": "The path of its page"},
        },
    },
    "HistoryRun": {
        "type": "object",
        "properties": {
            "reference": {"type": "string"},
            "kind": {"enum": ["report", "group"]},
            "source": {"enum": ["config", "file", "api", "schedule"]},
            "started_at": _NULLABLE_NUMBER,
            "final_at": {"type": "number"},
            "duration_seconds": _NULLABLE_NUMBER,
            "outcome": {"enum": list(OUTCOMES)},
            "error_code": {"type": "string"},
            "error_message": {
                "type": "string",
                "description": "Sigma's errorMsg, redacted, control characters escaped",
            },
        },
    },
    "ExpectedRun": {
        "type": "object",
        "properties": {
            "expected_at": {"type": "number"},
            "started_at": _NULLABLE_NUMBER,
            "late": {"type": "boolean", "description": "A run started, after the grace"},
            "missed": {"type": "boolean", "description": "No run started within the grace"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/reports": {
        "get": {
            "summary": "Every report identity with its last success and last failure",
            "responses": {
                "200": json_answer(
                    "The identities",
                    {
                        "type": "object",
                        "properties": {
                            "reports": {"type": "array", "items": {"$ref": "#/components/schemas/Identity"}}
                        },
                    },
                ),
                "503": json_answer("The state store cannot be read now", ERROR_SCHEMA_REF),
            },
        }
    },
    "/api/v1/reports/history": {
        "get": {
            "summary": "An identity's last 50 runs and judged expected times, newest first",
            "parameters": _IDENTITY_PARAMS,
            "responses": {
                "200": json_answer(
                    "The history",
                    {
                        "type": "object",
                        "required": ["runs", "expected"],
                        "properties": {
                            "report_group_id": {"type": "string"},
                            "report_id": {"type": "string"},
                            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryRun"}},
                            "expected": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/ExpectedRun"},
                            },
                        },
                    },
                ),
                "400": json_answer("An id over 256 characters", ERROR_SCHEMA_REF),
                "404": json_answer("No such identity, or none named", ERROR_SCHEMA_REF),
                "503": json_answer("The state store cannot be read now", ERROR_SCHEMA_REF),
            },
        }
    },
    "/report": {
        "get": {
            "summary": "An identity's page (HTML, no JavaScript): its history",
            "parameters": _IDENTITY_PARAMS,
            "responses": {
                "200": {"description": "The page"},
                "400": {"description": "An id over 256 characters"},
                "404": {"description": "No such identity, or none named"},
                "503": {"description": "The state store cannot be read now"},
            },
        }
    },
}
