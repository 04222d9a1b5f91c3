"""The heartbeat table: one winner per dead worker, and a worker declared dead stops."""

from __future__ import annotations

import threading

from masquerade_dbos._executors import ExecutorTable, executors

from .workers import WorkerProcess, wait_until


def test_exactly_one_live_worker_claims_a_dead_one(postgres_url: str) -> None:
    table = ExecutorTable(postgres_url)
    table.create()
    try:
        table.register("dead", grace=-60)  # its last heartbeat: a minute ago
        for live in ("a", "b", "c", "d"):
            table.register(live)
        won: dict[str, list[str]] = {}
        start = threading.Barrier(4)

        def claim(me: str) -> None:
            start.wait()
            won[me] = table.claim_dead(me, timeout=15)

        threads = [threading.Thread(target=claim, args=(me,)) for me in ("a", "b", "c", "d")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [name for claims in won.values() for name in claims] == ["dead"]  # one claim
        rows = {row["executor_id"]: row for row in table.rows()}
        assert rows["dead"]["state"] == "dead"
        assert rows["dead"]["recovered_by"] in {"a", "b", "c", "d"}
        assert not table.claim_dead("a", timeout=15)  # nothing left to claim
        assert not table.beat("dead")  # a worker declared dead cannot beat again
    finally:
        table.close()


def test_a_worker_declared_dead_stops_at_its_next_heartbeat(postgres_url: str) -> None:
    worker = WorkerProcess("graphs.py:slow", postgres_url, "worker-a")
    worker.start()
    try:
        table = ExecutorTable(postgres_url)
        try:
            # another worker's verdict (as if worker-a had stalled past the timeout)
            table.register("judge")
            with table.engine.begin() as conn:
                conn.execute(
                    executors.update()
                    .where(executors.c.executor_id == "worker-a")
                    .values(state="dead", recovered_by="judge")
                )
        finally:
            table.close()
        assert worker.process is not None
        wait_until(lambda: worker.process is not None and worker.process.poll() is not None)
        assert worker.process.returncode == 70
        assert worker.logged("declared dead"), worker.log()
    finally:
        worker.stop()
