"""Faults on demand and the request log: :class:`Fault` (what to inject), :class:`RecordedRequest`
(what was received), and :class:`FaultInjection`, the ASGI middleware that does both."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Fault", "RecordedRequest", "FaultBook", "FaultInjection"]


@dataclass
class Fault:
    """A fault the emulator injects into the next matching HTTP requests.

    Attributes:
        status: answer with this HTTP status (``None``: answer normally, after ``delay``).
        error: the ``{"error": ...}`` message.
        retry_after: seconds, sent as ``retry-after-ms`` and ``retry-after``.
        delay: seconds to wait before answering (a slow server).
        method: only requests with this method (``"POST"``...), or any.
        path: only requests whose path matches this regular expression, or any.
        times: how many requests it applies to.
    """

    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class RecordedRequest:
    """One HTTP request the emulator received, with the status it answered (0 until the
    answer starts, or when the client went away first)."""

    method: str
    path: str
    status: int
    at: float



class FaultBook:
    """The faults still to inject and the requests received (thread-safe: tests inject
    from their own thread while the emulator's loop serves)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, method: str, path: str) -> RecordedRequest:
        entry = RecordedRequest(method, path, 0, time.monotonic())
        with self.lock:
            self.requests.append(entry)
        return entry


class FaultInjection:
    """ASGI middleware: records every request and injects the faults tests asked for."""

    def __init__(self, app: ASGIApp, book: FaultBook) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        entry = self.book.record(method, path)
        fault = self.book.take_fault(method, path)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if fault is not None and fault.delay and fault.status is None:
                    # A slow answer: the request was handled, the response is late.
                    await asyncio.sleep(fault.delay)
                entry.status = message["status"]
            await send(message)

        try:
            if fault is not None and fault.status is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                headers: dict[str, str] = {}
                if fault.retry_after is not None:
                    headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
                    headers["retry-after"] = str(max(0, round(fault.retry_after)))
                message = fault.error or _DEFAULT_FAULT_MESSAGES.get(
                    fault.status, "Injected fault"
                )
                response = JSONResponse(
                    {"error": message}, status_code=fault.status, headers=headers
                )
                await response(scope, receive, recording_send)
                return
            await self.app(scope, receive, recording_send)
        except OSError:
            pass  # the client went away while we were slow


_DEFAULT_FAULT_MESSAGES = {
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
