"""Emulated ephemeral keys: ``POST /v1/realtime/client_secrets`` and their checks.

A client secret (``ek_...``) carries a session configuration and an expiry (10 s to 2 h
after creation, 10 minutes by default). It authenticates websockets (bearer or the
``openai-insecure-api-key.`` subprotocol) and ``POST /v1/realtime/calls`` until it
expires, and every session made with it starts from its configuration. It is registered
as a secret, so it never shows in a log line.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from masquerade import register_secret

from ._calls import api_error
from ._realtime import default_session, merge_session
from ._wire import HttpResponse, json_response

__all__ = ["ClientSecretRecord", "SecretStore"]

DEFAULT_TTL_S = 600


@dataclass
class ClientSecretRecord:
    """One minted ephemeral key and the session configuration it carries."""

    value: str
    expires_at: int
    session: dict[str, Any]
    uses: int = 0


class SecretStore:
    """Every ephemeral key the emulator minted, by value."""

    def __init__(self) -> None:
        self.secrets: dict[str, ClientSecretRecord] = {}
        #: Seconds added to the wall clock: what ``advance_clock`` moves.
        self.clock_offset = 0.0

    def now(self) -> float:
        """The emulator's time (Unix seconds)."""
        return time.time() + self.clock_offset

    def find(self, value: str) -> ClientSecretRecord | None:
        """The live secret with this value (``None`` when unknown or expired)."""
        found = self.secrets.get(value)
        if found is None or self.now() >= found.expires_at:
            return None
        return found

    def is_expired(self, value: str) -> bool:
        """Whether ``value`` is a key this emulator minted that has expired."""
        found = self.secrets.get(value)
        return found is not None and self.now() >= found.expires_at

    def mint(self, body: Any) -> HttpResponse:
        """``POST /v1/realtime/client_secrets``: validate, mint, answer as the API does."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return _bad("The body must be a JSON object.", None)
        expires = body.get("expires_after")
        ttl = DEFAULT_TTL_S
        if expires is not None:
            if not isinstance(expires, dict) or expires.get("anchor", "created_at") != (
                "created_at"
            ):
                return _bad("Invalid 'expires_after.anchor': only 'created_at' is supported.",
                            "expires_after.anchor")
            seconds = expires.get("seconds", DEFAULT_TTL_S)
            if not isinstance(seconds, int) or isinstance(seconds, bool) or not (
                10 <= seconds <= 7200
            ):
                return _bad("Invalid 'expires_after.seconds': expected an integer between "
                            "10 and 7200.", "expires_after.seconds")
            ttl = seconds
        config = body.get("session") or {"type": "realtime"}
        if not isinstance(config, dict) or config.get("type") not in ("realtime",
                                                                       "transcription"):
            return _bad("Missing required parameter: 'session.type'.", "session.type")
        now = int(self.now())
        session = default_session(str(config.get("model") or "gpt-realtime"), now + ttl)
        merge_session(session, config)
        value = f"ek_{secrets.token_hex(16)}"
        register_secret(value)  # a key like any other: never in a log line
        self.secrets[value] = ClientSecretRecord(value=value, expires_at=now + ttl,
                                                 session=session)
        return json_response(200, {"value": value, "expires_at": now + ttl,
                                   "session": session})


def _bad(message: str, param: str | None) -> HttpResponse:
    code = "missing_required_parameter" if message.startswith("Missing") else "invalid_value"
    return json_response(400, api_error(message, code, param=param))
