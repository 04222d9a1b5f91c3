"""Client tokens: what a run's frontend holds to read that run's join credentials.

A token is ``HMAC-SHA256(service secret, run id)``: every ``serve`` process of a
deployment derives the same token for a run (the same idempotency key gives the same run
and the same token), and a token opens its own run only. The service secret is
``MASQUERADE_SERVICE_SECRET`` when set, else one generated once and kept in the table
``masquerade_service`` of the runs database, shared by every process that uses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

import sqlalchemy as sa

from masquerade import register_secret

from .._executors import engine_url

__all__ = ["ClientTokens", "load_service_secret"]

_metadata = sa.MetaData()
service_table = sa.Table(
    "masquerade_service",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

_PREFIX = "ct_"


def load_service_secret(database_url: str) -> bytes:
    """The deployment's token secret (blocking: run it in a thread)."""
    configured = os.environ.get("MASQUERADE_SERVICE_SECRET")
    if configured:
        register_secret(configured)
        return configured.encode()
    engine = sa.create_engine(engine_url(database_url))
    try:
        for _ in range(3):
            try:
                _metadata.create_all(engine, checkfirst=True)
                with engine.begin() as conn:
                    row = conn.execute(
                        sa.select(service_table.c.value).where(service_table.c.name == "token")
                    ).first()
                    if row is None:
                        value = secrets.token_urlsafe(32)
                        conn.execute(sa.insert(service_table).values(name="token", value=value))
                    else:
                        value = str(row[0])
                register_secret(value)
                return value.encode()
            except sa.exc.DBAPIError:  # another process created it at the same moment
                continue
        raise RuntimeError("the service secret could not be created")
    finally:
        engine.dispose()


class ClientTokens:
    """Derives and checks client tokens (constant-time comparison)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "<ClientTokens>"

    def token(self, run_id: str) -> str:
        digest = hmac.new(self._secret, run_id.encode(), hashlib.sha256).digest()
        # Not registered for redaction one by one (a long-running service would keep
        # every run's token forever): the service never logs a token, and its request
        # lines (where ?client_token= may appear) are not logged.
        return _PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def opens(self, token: str, run_id: str) -> bool:
        return hmac.compare_digest(self.token(run_id).encode(), token.encode("utf-8", "replace"))
