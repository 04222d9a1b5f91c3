"""Testing guide: tests for the quickstart graph, on the Runway emulator and on a script.

Run them with ``pytest test_quickstart_graph.py``; they need no key and no network.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from quickstart_graph import State, book_slot, graph

from masquerade_runway.emulator import RunwayEmulator

# Usually in your conftest.py: the masquerade_host and scripted_provider fixtures.
pytest_plugins = ["masquerade.pytest_plugin"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunwayEmulator]:
    # One emulator for the module: it runs on its own thread, so any event loop can use it.
    with RunwayEmulator(plan={"provisioning": 0.02}) as emulator:
        yield emulator


@pytest.mark.anyio
async def test_the_avatar_books_the_slot(emulator: RunwayEmulator, masquerade_host: Any) -> None:
    emulator.plan_next(
        script=[
            {"say": "When should we deliver?"},
            {"tool": "book_slot", "args": {"customer": "Ada", "day": "Monday", "hour": 10}},
            {"hangup": True},
        ]
    )
    # A host with only this provider (no installed plugins) and a fast poller.
    host = masquerade_host(emulator.provider())
    final = await graph.run(State(customer="Ada"), host=host)

    assert final.call is not None
    assert final.call.outcome == "completed"
    (call,) = final.call.tool_calls
    assert (call.name, call.output) == ("book_slot", "booked Monday at 10:00")
    assert final.summary == "Ada: completed, ['booked Monday at 10:00']"


@pytest.mark.anyio
async def test_a_bad_hour_is_answered_and_the_call_goes_on(
    emulator: RunwayEmulator, masquerade_host: Any
) -> None:
    emulator.plan_next(
        script=[
            {"tool": "book_slot", "args": {"customer": "Ada", "day": "Monday", "hour": 23}},
            {"tool": "book_slot", "args": {"customer": "Ada", "day": "Monday", "hour": "ten"}},
            {"say": "Sorry, that did not work."},
            {"hangup": True},
        ]
    )
    # A host with only this provider (no installed plugins) and a fast poller.
    host = masquerade_host(emulator.provider())
    final = await graph.run(State(customer="Ada"), host=host)

    assert final.call is not None
    assert final.call.outcome == "completed"
    errors = [(c.error_type, c.error) for c in final.call.tool_calls]
    assert errors[0] == ("exception", "deliveries run from 8 to 18")
    assert errors[1][0] == "arguments"
    assert "hour" in (errors[1][1] or "")


@pytest.mark.anyio
async def test_the_graph_with_a_scripted_provider(
    masquerade_host: Any, scripted_provider: Any
) -> None:
    # No emulator at all: a scripted provider registered under the graph's provider name.
    provider = scripted_provider(
        [{"tool": "book_slot", "args": {"customer": "Bo", "day": "Tuesday", "hour": 9}}],
        name="runway",
        queued_polls=1,
    )
    final = await graph.run(State(customer="Bo"), host=masquerade_host(provider))

    assert final.summary == "Bo: completed, ['booked Tuesday at 9:00']"
    assert provider.sessions[0].ended == ["completed"]  # the cancel path ran once


@pytest.mark.anyio
async def test_the_tool_alone() -> None:
    # A Tool is still callable directly, awaited like the function it wraps.
    assert await book_slot("Cy", "Friday", 8) == "booked Friday at 8:00"
    with pytest.raises(ValueError, match="from 8 to 18"):
        await book_slot("Cy", "Friday", 7)
