"""Fixtures of the durable-runs tests: a real PostgreSQL cluster, one database per test.

The cluster is started once per test session (``initdb`` + ``pg_ctl`` in a temporary
directory, on a free loopback port, as the ``postgres`` user when running as root) and
stopped at the end. Each test gets a fresh database in it. DBOS is asyncio-only, so
these tests run on asyncio (one test checks the clear error under trio).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from masquerade_dbos._executors import engine_url
from masquerade_dbos.testing import PostgresNotFound, postgres_cluster


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    try:
        cluster = postgres_cluster()
        url = cluster.__enter__()
    except PostgresNotFound as exc:  # pragma: no cover - the CI image has PostgreSQL
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database in the session's cluster."""
    name = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(engine_url(postgres_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"
