"""The OpenAPI 3 document of every endpoint the exporter serves. Pure data."""

from __future__ import annotations

from functools import cache
from typing import Any

from sigma_exporter import __version__
from sigma_exporter.config.model import LABEL_NAME, MAX_LABEL_VALUE, RESERVED_LABELS
from sigma_exporter.web.api import openapi_reports
from sigma_exporter.web.api.parse import EARLIEST_SUBMITTED, MAX_LABELS, MAX_TEXT


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = _json(schema)
    return answer


#: Python's white space (str.isspace, what parse.py trims and refuses), spelled out: ECMA's \s differs.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: A reference number or id: surrounding white space is trimmed, none inside, no control characters. (Lone
#: surrogates are refused too, being no text UTF-8 can carry: JSON Schema's strings are Unicode text already.)
NO_SPACE = rf"^[{_SPACE}]*[^{_SPACE}\x00-\x1f\x7f-\x9f]+[{_SPACE}]*$"
NO_SPACE_OR_EMPTY = rf"^[{_SPACE}]*[^{_SPACE}\x00-\x1f\x7f-\x9f]*[{_SPACE}]*$"
#: A label value: any text but NUL.
LABEL_VALUE = r"^[^\x00]*$"
RUN = {"$ref": "#/components/schemas/Run"}
ERROR = openapi_reports.ERROR_SCHEMA_REF
TEXT = {"text/plain": {"schema": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    return _answer(description, ERROR)


def _registered(description: str) -> dict[str, Any]:
    """A registration's answer: the run, and links to where it is addressed (its `Location`)."""
    by_reference = {"reference": "$response.body#/reference"}  # as held: trimmed of white space
    return {
        **_answer(description, RUN),
        "headers": {
            "Location": {
                "description": "Where GET and DELETE address the run: the reference, percent-encoded",
                "required": True,
                "schema": {"type": "string"},
            }
        },
        "links": {
            "GetRun": {"operationId": "getRun", "parameters": by_reference},
            "DeleteRun": {"operationId": "deleteRun", "parameters": by_reference},
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint, built once and shared: callers must not change it."""
    nullable_number = {"type": ["number", "null"]}
    reference_param = {
        "name": "reference",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": NO_SPACE},
    }
    write_errors = {
        "401": _error("No or wrong credentials"),
        "403": _error("Writes are not enabled (no api.token_file and no basic-auth users)"),
        "503": _error("The state store cannot persist now"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sigma-exporter",
            "version": __version__,
            "description": "A Prometheus exporter for Sigma report runs: metrics, health, reload and the run registry.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "api.token_file"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "basic_auth_users of --web.config.file",
                },
            },
            "schemas": {
                "Registration": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["reference", "kind"],
                    "properties": {
                        "reference": {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_SPACE},
                        "kind": {"enum": ["report", "group"]},
                        # Optional fields may also be null (taken as absent).
                        "report_id": {
                            "type": ["string", "null"],
                            "maxLength": MAX_TEXT,
                            "pattern": NO_SPACE_OR_EMPTY,
                        },
                        "report_group_id": {
                            "type": ["string", "null"],
                            "maxLength": MAX_TEXT,
                            "pattern": NO_SPACE_OR_EMPTY,
                        },
                        "labels": {
                            "type": ["object", "null"],
                            "maxProperties": MAX_LABELS,
                            "propertyNames": {
                                "pattern": LABEL_NAME.pattern,
                                "not": {"anyOf": [{"enum": sorted(RESERVED_LABELS)}, {"pattern": "^__"}]},
                            },
                            "additionalProperties": {
                                "type": "string",
                                "maxLength": MAX_LABEL_VALUE,
                                "pattern": LABEL_VALUE,
                            },
                        },
                        "submitted_at": {
                            "type": ["number", "null"],
                            "minimum": EARLIEST_SUBMITTED,
                            "description": "unix seconds; at most a day after the registration arrives (400 otherwise)",
                        },
                    },
                },
                "Run": {
                    "type": "object",
                    "properties": {
                        "reference": {"type": "string"},
                        "kind": {"enum": ["report", "group"]},
                        "source": {"enum": ["config", "file", "api", "schedule"]},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "report_id": {"type": "string"},
                        "report_group_id": {"type": "string"},
                        "submitted_at": nullable_number,
                        "registered_at": nullable_number,
                        "status": {"type": ["string", "null"]},
                        "since": nullable_number,
                        "final_at": nullable_number,
                        "up": {"type": "boolean"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
                },
                **openapi_reports.SCHEMAS,
            },
        },
        "paths": {
            "/metrics": {
                "get": {
                    "summary": "Prometheus exposition (text or OpenMetrics, gzip when asked)",
                    "responses": {"200": {"description": "The metrics", "content": TEXT}},
                }
            },
            "/": {
                "get": {"summary": "Status page (HTML)", "responses": {"200": {"description": "The page"}}}
            },
            "/-/healthy": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": {"description": "Healthy", "content": TEXT}},
                }
            },
            "/-/ready": {
                "get": {
                    "summary": "Readiness: the first poll cycle has finished",
                    "responses": {"200": {"description": "Ready"}, "503": {"description": "Not yet"}},
                }
            },
            "/-/reload": {
                "post": {
                    "summary": "Re-read the config and the web config",
                    "responses": {
                        "200": {"description": "Every file loaded", "content": TEXT},
                        "500": {"description": "A file failed; its last good version stays", "content": TEXT},
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _answer("OpenAPI 3", {"type": "object"})},
                }
            },
            "/api/v1/runs": {
                "post": {
                    "summary": "Register a run (idempotent)",
                    "security": [{"bearer": []}, {"basic": []}],
                    "requestBody": {
                        "required": True,
                        "content": _json({"$ref": "#/components/schemas/Registration"}),
                    },
                    "responses": {
                        "201": _registered("Registered (durable)"),
                        "200": _registered("Already held with that kind"),
                        "400": _error("A field is wrong; `field` names it"),
                        "409": _error("Held with another kind"),
                        "413": {"description": "Body over 64 KiB"},
                        "415": _error("Not JSON"),
                        "429": _error("retention.max_runs or retention.max_identities reached"),
                        **write_errors,
                    },
                },
                "get": {
                    "summary": "Runs held",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"enum": ["active", "final", "all"], "default": "all"},
                        }
                    ],
                    "responses": {
                        "200": _answer(
                            "The runs",
                            {"type": "object", "properties": {"runs": {"type": "array", "items": RUN}}},
                        ),
                        "400": _error("Bad state"),
                    },
                },
            },
            "/api/v1/runs/{reference}": {
                "parameters": [reference_param],
                "get": {
                    "operationId": "getRun",
                    "summary": "One run",
                    "responses": {"200": _answer("The run", RUN), "404": _error("Not held")},
                },
                "delete": {
                    "operationId": "deleteRun",
                    "summary": "Let an api run go",
                    "security": [{"bearer": []}, {"basic": []}],
                    "responses": {
                        "204": {"description": "Deleted"},
                        "404": _error("Not held"),
                        "409": _error("Not an api run"),
                        **write_errors,
                    },
                },
            },
            **openapi_reports.PATHS,
        },
    }
