"""The OpenAPI 3.1 description of the call service (served at ``/openapi.json``; the
documentation page ``docs/reference/service-api.md`` is generated from it when the site
is built)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_schema", "render_markdown"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^run_[0-9a-f]+$"},
}
_KEY: list[dict[str, list[str]]] = [{"apiKey": []}]
_KEY_OR_TOKEN: list[dict[str, list[str]]] = [
    {"apiKey": []},
    {"clientToken": []},
    {"clientTokenQuery": []},
]
_AUTH_ERRORS = {
    "401": _error("No key or token, or a wrong key (only when MASQUERADE_API_KEY is set)"),
}


def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "masquerade call service",
            "version": "1",
            "description": (
                "Start graph runs, hand their avatar session's join credentials to a "
                "frontend, follow and cancel runs, and take incoming OpenAI SIP calls. "
                "Served by `masquerade serve FILE[:GRAPH]`. Every error is a JSON object "
                '`{"error": {"code": ..., "message": ...}}`.'
            ),
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "MASQUERADE_API_KEY (asked only when it is set)",
                },
                "clientToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the run's client_token (opens that run only)",
                },
                "clientTokenQuery": {"type": "apiKey", "in": "query", "name": "client_token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "keys": {"type": "array", "items": {"type": "string"}},
                                "status": {"type": "string"},
                                "details": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    },
                },
                "RunRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "state": {
                            "type": "object",
                            "description": "the initial state (validated against the "
                            "graph's state model; unknown keys are refused)",
                        },
                        "idempotency_key": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "description": "the same key returns the same run",
                        },
                    },
                },
                "RunCreated": {
                    "type": "object",
                    "required": ["id", "status", "client_token"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "client_token": {
                            "type": "string",
                            "description": "give it to the run's frontend: it opens this "
                            "run's credentials and events, nothing else",
                        },
                    },
                },
                "Status": {
                    "type": "string",
                    "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
                },
                "Run": {
                    "type": "object",
                    "required": ["id", "status", "state", "error"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"$ref": "#/components/schemas/Status"},
                        "state": {
                            "type": ["object", "null"],
                            "description": "the initial state; the final one once succeeded",
                        },
                        "error": {"type": ["string", "null"]},
                    },
                },
                "Credentials": {
                    "type": "object",
                    "required": ["id", "session", "credentials"],
                    "properties": {
                        "id": {"type": "string"},
                        "session": {
                            "type": "object",
                            "properties": {
                                "state": {"type": "string", "enum": ["ready"]},
                                "node": {"type": "string"},
                                "session_id": {"type": ["string", "null"]},
                                "provider": {"type": ["string", "null"]},
                                "kind": {"type": ["string", "null"]},
                            },
                        },
                        "credentials": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "what the frontend joins with (e.g. Runway "
                            "sessionId and sessionKey)",
                        },
                    },
                },
            },
        },
        "paths": {
            "/v1/runs": {
                "post": {
                    "summary": "Start a run",
                    "security": _KEY,
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RunRequest"}
                            }
                        }
                    },
                    "responses": {
                        "202": _json(
                            "The run is queued (or, for a known idempotency key, the existing run)",
                            {"$ref": "#/components/schemas/RunCreated"},
                        ),
                        "400": _error("The body is not JSON"),
                        **_AUTH_ERRORS,
                        "413": _error("The body is larger than the configured limit"),
                        "422": _error("Unknown keys, wrong types, or a state that does not fit"),
                    },
                }
            },
            "/v1/runs/{run_id}": {
                "get": {
                    "summary": "A run's status, state and error",
                    "security": _KEY,
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": _json("The run", {"$ref": "#/components/schemas/Run"}),
                        **_AUTH_ERRORS,
                        "404": _error("No run has this id"),
                    },
                }
            },
            "/v1/runs/{run_id}/credentials": {
                "get": {
                    "summary": "The frontend's join credentials, once the session is READY",
                    "security": _KEY_OR_TOKEN,
                    "parameters": [
                        _RUN_ID,
                        {
                            "name": "wait",
                            "in": "query",
                            "schema": {"type": "number", "minimum": 0, "default": 0},
                            "description": "long-poll up to this many seconds (at most the "
                            "configured maximum, 60 by default)",
                        },
                    ],
                    "responses": {
                        "200": _json(
                            "The session is ready", {"$ref": "#/components/schemas/Credentials"}
                        ),
                        "401": _error("Neither a client token nor the API key"),
                        "403": _error("The token belongs to another run"),
                        "404": _error("No run has this id"),
                        "408": _error("No session was ready within `wait`: ask again"),
                        "409": _error("The run ended without a live session"),
                        "410": _error("The run's session has ended"),
                        "422": _error("`wait` is not a number within the limits"),
                    },
                }
            },
            "/v1/runs/{run_id}/events": {
                "get": {
                    "summary": "Server-Sent Events of the run (resumable with Last-Event-ID)",
                    "description": (
                        "Each message's `data` is one event as `masquerade run --json` "
                        "prints it (`node.started`, `node.finished`, session events with "
                        "`node`, `graph.ended`, `graph.error`; audio frames are not sent), "
                        "with an `id` to resume from. The stream ends with an `end` event "
                        "once the run has ended."
                    ),
                    "security": _KEY_OR_TOKEN,
                    "parameters": [
                        _RUN_ID,
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "An event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_AUTH_ERRORS,
                        "403": _error("The token belongs to another run"),
                        "404": _error("No run has this id"),
                        "422": _error("Last-Event-ID is not an integer"),
                    },
                }
            },
            "/v1/runs/{run_id}/sdp": {
                "post": {
                    "summary": "A browser's WebRTC SDP offer in, the SDP answer out",
                    "description": (
                        "For a run whose OpenAI AvatarNode has "
                        '`options={"transport": "webrtc"}`: the worker running the session '
                        "creates the call with the session's configuration (tools declared "
                        "by the backend, never the browser), attaches the sideband, and the "
                        "answer comes back here."
                    ),
                    "security": _KEY_OR_TOKEN,
                    "parameters": [_RUN_ID],
                    "requestBody": {
                        "content": {"application/sdp": {"schema": {"type": "string"}}}
                    },
                    "responses": {
                        "201": {
                            "description": "The SDP answer",
                            "content": {"application/sdp": {"schema": {"type": "string"}}},
                        },
                        "400": _error("The body is not an SDP offer"),
                        "401": _error("Neither a client token nor the API key"),
                        "403": _error("The token belongs to another run"),
                        "404": _error("No run has this id"),
                        "409": _error("The run has ended"),
                        "413": _error("The body is larger than the configured limit"),
                        "502": _error("The provider refused the offer"),
                        "504": _error("No browser-frontend session answered in time"),
                    },
                }
            },
            "/v1/runs/{run_id}/cancel": {
                "post": {
                    "summary": "Cancel a run (a live call ends through its cancel path)",
                    "security": _KEY,
                    "parameters": [_RUN_ID],
                    "responses": {
                        "202": _json(
                            "Cancelled",
                            {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "status": {"const": "cancelled"},
                                },
                            },
                        ),
                        **_AUTH_ERRORS,
                        "404": _error("No run has this id"),
                        "409": _error("The run had already ended"),
                    },
                }
            },
            "/v1/webhooks/openai": {
                "post": {
                    "summary": "An incoming SIP call (signed realtime.call.incoming webhook)",
                    "description": (
                        "Verified with OPENAI_WEBHOOK_SECRET (replays refused). The call is "
                        "accepted and a run is started with `call_id` (and `sip_headers` "
                        "when the state model has it) in its state; one run per call."
                    ),
                    "security": [],
                    "responses": {
                        "200": _json(
                            "The run that answers the call",
                            {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "status": {"type": "string"},
                                    "call_id": {"type": "string"},
                                },
                            },
                        ),
                        "400": _error("A bad or stale signature, or a replay: nothing started"),
                        "413": _error("The body is larger than the configured limit"),
                        "501": _error("No webhook secret, or a graph without call_id"),
                        "502": _error("Accepting the call failed"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _json("Alive", {"type": "object"})},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the database is reachable and workers are alive",
                    "security": [],
                    "responses": {
                        "200": _json("Ready", {"type": "object"}),
                        "503": _json("Not ready (the body says why)", {"type": "object"}),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
                }
            },
            "/join": {
                "get": {
                    "summary": "A minimal join page (`/join?run=ID&token=CLIENT_TOKEN`)",
                    "security": [],
                    "responses": {"200": {"description": "HTML"}},
                }
            },
        },
    }


def render_markdown(schema: dict[str, Any] | None = None) -> str:
    """The reference page of the service, generated from the OpenAPI document."""
    schema = schema or openapi_schema()
    lines = [
        "# Call service API",
        "",
        schema["info"]["description"],
        "",
        "The same document is served at `/openapi.json`.",
        "",
    ]
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            lines.append(f"## `{method.upper()} {path}`")
            lines.append("")
            lines.append(op["summary"] + ".")
            if op.get("description"):
                lines += ["", op["description"]]
            lines.append("")
            security = op.get("security", [])
            names = sorted({name for entry in security for name in entry})
            auth = {
                "apiKey": "API key",
                "clientToken": "client token",
                "clientTokenQuery": "`?client_token=`",
            }
            lines.append("Auth: " + (", ".join(auth[n] for n in names) if names else "none") + ".")
            lines.append("")
            params = op.get("parameters", [])
            if params:
                lines.append("| parameter | in | type |")
                lines.append("|---|---|---|")
                for p in params:
                    kind = p.get("schema", {}).get("type", "")
                    lines.append(f"| `{p['name']}` | {p['in']} | {kind} |")
                lines.append("")
            lines.append("| status | meaning |")
            lines.append("|---|---|")
            for status, response in op["responses"].items():
                lines.append(f"| {status} | {response['description']} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
