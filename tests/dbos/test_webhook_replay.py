"""The call service's webhook replay store: one table in the runs database, shared by
every ``serve`` process, so a webhook id is accepted once whichever process it reaches.

Two stores on one database stand for two processes (each has its own engine and
connection pool, as a process would).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from masquerade_dbos._runlog import RunLog
from masquerade_dbos.service import DatabaseReplayStore
from masquerade_openai import ReplayStore

NOW = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[DatabaseReplayStore, DatabaseReplayStore]]:
    """Two stores on one database, each with its own engine (as two processes)."""
    logs = [RunLog(database_url), RunLog(database_url)]
    first, second = (DatabaseReplayStore(log.engine) for log in logs)
    first.create()
    second.create()  # the table exists already: nothing happens
    try:
        yield first, second
    finally:
        for log in logs:
            log.close()


def test_it_is_a_replay_store() -> None:
    engine = sa.create_engine("sqlite://")
    assert isinstance(DatabaseReplayStore(engine), ReplayStore)
    with pytest.raises(ValueError, match="at least 1"):
        DatabaseReplayStore(engine, prune_batch=0)


def test_an_id_is_accepted_once_across_stores(
    stores: tuple[DatabaseReplayStore, DatabaseReplayStore],
) -> None:
    first, second = stores
    assert first.claim("wh_1", NOW + 300, now=NOW)
    assert not second.claim("wh_1", NOW + 300, now=NOW + 1)  # the other process: a replay
    assert not first.claim("wh_1", NOW + 300, now=NOW + 2)
    assert second.claim("wh_2", NOW + 300, now=NOW + 2)  # another id is not
    assert len(first) == len(second) == 2


def test_concurrent_claims_of_one_id_have_one_winner(
    stores: tuple[DatabaseReplayStore, DatabaseReplayStore],
) -> None:
    ids = [f"wh_race_{n}" for n in range(10)]
    threads_per_id = 6
    barrier = threading.Barrier(threads_per_id)
    results: dict[str, list[bool]] = {i: [] for i in ids}
    failures: list[BaseException] = []

    def claim(store: DatabaseReplayStore) -> None:
        try:
            for webhook_id in ids:
                barrier.wait(timeout=60)  # every thread claims the same id at once
                results[webhook_id].append(store.claim(webhook_id, NOW + 300, now=NOW))
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=claim, args=(stores[n % 2],)) for n in range(threads_per_id)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    for webhook_id, claimed in results.items():
        assert len(claimed) == threads_per_id, webhook_id
        assert claimed.count(True) == 1, (webhook_id, claimed)


def test_an_expired_id_may_be_claimed_again(
    stores: tuple[DatabaseReplayStore, DatabaseReplayStore],
) -> None:
    first, second = stores
    assert first.claim("wh_old", NOW + 300, now=NOW)
    assert not second.claim("wh_old", NOW + 600, now=NOW + 300)  # still within tolerance
    assert second.claim("wh_old", NOW + 900, now=NOW + 301)  # expired: a new claim
    assert not first.claim("wh_old", NOW + 900, now=NOW + 302)


def test_a_released_id_is_taken_again_by_any_store(
    stores: tuple[DatabaseReplayStore, DatabaseReplayStore],
) -> None:
    first, second = stores
    assert first.claim("wh_failed", NOW + 300, now=NOW)
    first.release("wh_failed")  # its call could not be accepted: OpenAI will retry it
    first.release("wh_never_claimed")
    assert second.claim("wh_failed", NOW + 300, now=NOW + 1)
    assert not first.claim("wh_failed", NOW + 300, now=NOW + 2)


def test_expired_ids_are_pruned_a_bounded_batch_at_a_time(
    stores: tuple[DatabaseReplayStore, DatabaseReplayStore],
) -> None:
    first, second = stores
    for n in range(5):
        assert first.claim(f"wh_{n}", NOW + n, now=NOW - 10)
    assert first.claim("wh_live", NOW + 1000, now=NOW - 10)
    assert second.prune(now=NOW + 100, limit=2) == 2
    assert len(first) == 4
    assert second.prune(now=NOW + 100) == 3
    assert second.prune(now=NOW + 100) == 0
    assert len(first) == 1  # the live id stays
    assert not second.claim("wh_live", NOW + 1000, now=NOW + 100)


def test_a_claim_prunes_at_most_once_per_interval(database_url: str) -> None:
    log = RunLog(database_url)
    try:
        store = DatabaseReplayStore(log.engine, prune_batch=2, prune_interval=60)
        store.create()
        for n in range(4):  # the first claim prunes (nothing yet); the next do not
            assert store.claim(f"wh_{n}", NOW, now=NOW - 1)
        assert store.claim("wh_new", NOW + 500, now=NOW + 59)  # the next interval: prunes 2
        assert len(store) == 3
        assert store.claim("wh_newer", NOW + 500, now=NOW + 60)  # within that interval
        assert len(store) == 4
        assert store.claim("wh_later", NOW + 500, now=NOW + 119)  # the next: 2 more
        assert len(store) == 3
    finally:
        log.close()
