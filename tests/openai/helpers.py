"""Small helpers shared by the OpenAI tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import anyio

from masquerade import Session, SessionRequest, hookimpl, tool
from masquerade.events import BaseEvent


class EventRecorder:
    """An observer plugin keeping every event of every session (tests only: a session
    itself keeps only the compact record for late subscribers)."""

    def __init__(self) -> None:
        self.events: dict[str, list[BaseEvent]] = {}
        self.changed = anyio.Event()

    @hookimpl
    def masquerade_session_event(self, session: Session, event: BaseEvent) -> None:
        self.events.setdefault(session.id, []).append(event)
        self.changed.set()


async def collect(
    session: Session,
    until: Callable[[list[BaseEvent]], bool],
    *,
    timeout: float = 20.0,
) -> list[BaseEvent]:
    """The session's events (from the start) once ``until(events)`` holds (or it ended)."""
    plugins = session.host.pm.get_plugins()  # type: ignore[attr-defined]
    recorder = next((p for p in plugins if isinstance(p, EventRecorder)), None)
    if recorder is not None:
        with anyio.fail_after(timeout):
            while True:
                seen = list(recorder.events.get(session.id, ()))
                if until(seen) or (seen and seen[-1].type == "ended"):
                    return seen
                recorder.changed = anyio.Event()
                await recorder.changed.wait()
    events: list[BaseEvent] = []
    with anyio.fail_after(timeout):
        async with session.events() as stream:
            async for event in stream:
                events.append(event)
                if until(events):
                    return events
    return events


def count(kind: str, n: int = 1, **fields: Any) -> Callable[[list[BaseEvent]], bool]:
    """A predicate: at least ``n`` events of type ``kind`` (with those field values)."""

    def check(events: list[BaseEvent]) -> bool:
        found = [
            e for e in events
            if e.type == kind and all(getattr(e, k, None) == v for k, v in fields.items())
        ]
        return len(found) >= n

    return check


def of(events: list[BaseEvent], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


@tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order by its number.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}


@tool
async def slow_lookup(order_id: str) -> str:
    """A lookup that takes a while (audio must keep flowing meanwhile).

    Args:
        order_id: The order number.
    """
    await anyio.sleep(0.3)
    return f"order {order_id} is late"


WebhookHandler = Callable[[bytes, dict[str, str]], Any]


async def serve_webhooks(handler: WebhookHandler, *, task_status: Any) -> None:
    """A minimal HTTP server on a free loopback port, for webhook deliveries.

    Runs until cancelled; reports its URL through ``task_status`` (``tg.start``). Each
    POST body and its headers go to ``await handler(body, headers)``, which returns the
    status code to answer.
    """
    from anyio.abc import SocketStream

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")

    async def serve(stream: SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                body += await stream.receive()
            status = await handler(body, headers)
            await stream.send(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )

    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # type: ignore[attr-defined]
    task_status.started(f"http://127.0.0.1:{port}/openai/webhook")
    await listener.serve(serve)



class Exchange(NamedTuple):
    events: list[BaseEvent]
    session: Session
    rt: Any  # the session's RealtimeSession


async def exchange(
    host_for: Callable[..., Any],
    provider: Any,
    text: str,
    until: Callable[[list[BaseEvent]], bool],
    *,
    request: SessionRequest | None = None,
) -> Exchange:
    """Open a session (``request``, by default a plain OpenAI one), send ``text`` as a user
    turn, collect its events until ``until`` holds, end it."""
    from masquerade_openai import wait_realtime

    request = request or SessionRequest(provider="openai")
    async with host_for(provider) as host, host.session(request) as session:
        rt = await wait_realtime(session)
        await rt.send_text(text)
        events = await collect(session, until)
        session.end()
    return Exchange(events, session, rt)


def last_answer(events: list[BaseEvent]) -> Any:
    """The last assistant ``transcript.done`` of ``events``."""
    return [e for e in of(events, "transcript.done") if getattr(e, "role", None) == "assistant"][-1]
