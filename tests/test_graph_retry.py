"""Node retry policies: attempts, which errors, delays, and the error of the last attempt."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from masquerade import END, START, Graph, GraphValidationError, Host, NodeError, RetryPolicy

pytestmark = pytest.mark.anyio


class State(BaseModel):
    value: str = ""


def flaky(failures: int, error: type[Exception] = ConnectionError):  # type: ignore[no-untyped-def]
    attempts: list[int] = []

    async def node(state: State) -> dict[str, str]:
        attempts.append(len(attempts) + 1)
        if len(attempts) <= failures:
            raise error(f"attempt {len(attempts)} failed")
        return {"value": f"ok after {len(attempts)}"}

    return node, attempts


def one_node(node, retry: RetryPolicy | None) -> Graph[State]:  # type: ignore[no-untyped-def]
    graph = Graph(State).add_node("flaky", node, retry=retry)
    return graph.add_edge(START, "flaky").add_edge("flaky", END)


async def test_a_failing_node_is_retried_until_it_succeeds() -> None:
    node, attempts = flaky(2)
    graph = one_node(node, RetryPolicy(max_attempts=3, backoff=0))
    async with Host(load_entrypoints=False) as host:
        final = await graph.run(State(), host=host)
    assert final.value == "ok after 3"
    assert attempts == [1, 2, 3]


async def test_the_last_attempt_s_error_fails_the_run() -> None:
    node, attempts = flaky(5)
    graph = one_node(node, RetryPolicy(max_attempts=2, backoff=0))
    async with Host(load_entrypoints=False) as host:
        with pytest.raises(NodeError, match="attempt 2 failed"):
            await graph.run(State(), host=host)
    assert attempts == [1, 2]


async def test_only_the_errors_it_names_are_retried() -> None:
    node, attempts = flaky(1, ValueError)
    graph = one_node(node, RetryPolicy(max_attempts=3, backoff=0, retry_on=ConnectionError))
    async with Host(load_entrypoints=False) as host:
        with pytest.raises(NodeError, match="attempt 1 failed"):
            await graph.run(State(), host=host)
    assert attempts == [1]
    predicate = RetryPolicy(retry_on=lambda error: "attempt 1" in str(error))
    assert predicate.should_retry(ValueError("attempt 1 failed"))
    assert not predicate.should_retry(ValueError("attempt 2 failed"))


async def test_without_a_policy_a_node_runs_once() -> None:
    node, attempts = flaky(1)
    async with Host(load_entrypoints=False) as host:
        with pytest.raises(NodeError):
            await one_node(node, None).run(State(), host=host)
    assert attempts == [1]


def test_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(backoff=0.5, multiplier=3, max_backoff=2)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.5, 2.0]


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"backoff": -1}, {"multiplier": 0.5}]
)
def test_a_nonsense_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(GraphValidationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
