"""The live view shared by ``masquerade demo`` and ``masquerade run``.

:class:`ConsoleView` renders graph and session events for people: which node runs,
provisioning and queue wait (a spinner with elapsed time on a terminal, one line per
provider status otherwise), transcript lines as they arrive, tool calls with their
arguments and answers, and a closing summary. :class:`JsonView` prints one JSON object
per event for machines. Both mask secrets (join credentials, keys) everywhere.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

import anyio
from pydantic import BaseModel

from .._redact import redact, redact_mapping
from ..events import BaseEvent
from ..graph import GraphEnded, GraphEvent, NodeEvent, NodeFinished, NodeStarted
from ..graph._events import jsonable
from ..hookspecs import hookimpl
from ..session import SessionResult

__all__ = ["ConsoleView", "JsonView", "SessionLedger", "format_result", "session_results"]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arguments(arguments: Any) -> str:
    """Tool arguments as they would be written in Python: ``order_id="A1001", hour=10``."""
    if isinstance(arguments, dict):
        text = ", ".join(
            f"{k}={json.dumps(jsonable(v), ensure_ascii=False)}" for k, v in arguments.items()
        )
        return _short(text)
    return _short(arguments)


def session_results(state: Any) -> dict[str, SessionResult]:
    """The :class:`~masquerade.SessionResult` fields of a state (model or dict)."""
    values = state.__dict__ if hasattr(state, "__dict__") else dict(state or {})
    return {k: v for k, v in values.items() if isinstance(v, SessionResult)}


class ConsoleView:
    """Prints graph and session events as a person wants to read them.

    Call it with session events (``view(event)``, e.g. as a session's ``on_event``) or
    graph events (``view.graph_event(event)``). Run :meth:`animate` in a task group
    to get a spinner with elapsed time while a session is provisioning on a terminal.

    Args:
        out: where to write (standard output by default).
        live: rewrite lines in place (spinner, transcript deltas); defaults to whether
            ``out`` is a terminal.
    """

    def __init__(self, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.tool_calls = 0
        self._t0 = time.monotonic()
        self._partial: dict[Any, str] = {}  # turns in progress: (role, turn) -> text
        self._settled: dict[Any, str] = {}  # turns printed before their `done` arrived
        self._transient = ""  # what is drawn on the current, unterminated line
        self._provisioning: float | None = None  # monotonic start while provisioning
        self._queued = False
        self._provider_status: str | None = None
        self._frame = 0
        self._indent = ""
        #: Each AvatarNode's deadline (``max_duration``), shown when its call runs.
        self.deadlines: dict[str, float | None] = {}
        self._node: str | None = None

    # ------------------------------------------------------------------ output
    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _clear(self) -> None:
        if self._transient:
            self._write("\r\x1b[2K")
            self._transient = ""

    def _draw(self, text: str) -> None:
        self._write("\r\x1b[2K" + text)
        self._transient = text

    def line(self, text: str) -> None:
        """Print one line (secrets masked), keeping a live spinner below it."""
        self._clear()
        self._write(redact(text) + "\n")
        self._redraw()

    def _redraw(self) -> None:
        if not self.live:
            return
        if self._partial:
            role, text = next(reversed(self._partial.items()))
            self._draw(redact(f"{self._indent}  {role[0]:>9} ▸ {text}"))
        elif self._provisioning is not None:
            waited = time.monotonic() - self._provisioning
            spin = _SPINNER[self._frame % len(_SPINNER)]
            where = "waiting in the provider's queue" if self._queued else "provisioning"
            status = f" · {self._provider_status}" if self._provider_status else ""
            self._draw(f"{self._indent}  {spin} {where}{status} · {waited:4.1f}s")

    async def animate(self, interval: float = 0.1) -> None:
        """Redraw the spinner until cancelled (does nothing when not live)."""
        if not self.live:
            return
        while True:
            await anyio.sleep(interval)
            if self._provisioning is not None and not self._partial:
                self._frame += 1
                self._redraw()

    # ------------------------------------------------------------------ graph events
    def graph_event(self, event: GraphEvent) -> None:
        if isinstance(event, NodeEvent):
            self._node = event.node
            self.show(event.event)
        elif isinstance(event, NodeStarted):
            self._indent = ""
            self.line(f"▶ {event.node}")
            self._indent = "  "
        elif isinstance(event, NodeFinished):
            self._indent = ""
            wrote = ", ".join(event.update) or "nothing"
            failed = [k for k, v in event.update.items() if _failed(v)]
            if failed:  # a node that continues on failure: it finished, its call did not
                self.line(
                    self._red(f"✗ {event.node}  {event.duration_s:.2f}s  → {wrote}")
                    + f"  (call failed: {', '.join(failed)}; the graph continues)"
                )
            else:
                self.line(f"✓ {event.node}  {event.duration_s:.2f}s  → {wrote}")
        elif isinstance(event, GraphEnded):
            self._indent = ""
            self.graph_summary(event)

    def _red(self, text: str) -> str:
        return f"\x1b[31m{text}\x1b[0m" if self.live else text

    def node_failed(self, node: str | None, message: str) -> None:
        """The run stopped because ``node`` failed (a red ✗ line saying why)."""
        self._indent = ""
        self._provisioning = None
        self._partial.clear()
        self.line(self._red(f"✗ {node or 'graph'} failed: {message}"))

    def graph_summary(self, event: GraphEnded) -> None:
        results = session_results(event.state)
        for key, result in results.items():
            self.line(format_result(result, title=f"session → {key}"))
        values = event.state.__dict__ if hasattr(event.state, "__dict__") else dict(event.state)
        others = {k: v for k, v in values.items() if k not in results and v not in (None, [], {})}
        lines = [
            f"── final state {'─' * 34}",
            f"  steps      {event.steps} in {event.duration_s:.2f}s",
        ]
        for key, value in others.items():
            if isinstance(value, BaseModel):  # a model reads best one field per line
                lines.append(f"  {key}")
                lines.extend(
                    f"    {field:<12} {_short(v, 160)}"
                    for field, v in value.__dict__.items()
                    if v not in (None, [], {})
                )
            else:
                lines.append(f"  {key:<10} {_short(value, 200)}")
        self.line("\n".join(lines))

    # ------------------------------------------------------------------ session events
    def __call__(self, event: BaseEvent) -> None:
        self.show(event)

    def _say(self, role: str, text: str) -> None:
        self.line(f"{self._indent}  {role:>9} ▸ {text}")

    def _settle_partials(self, keep: Any = None) -> None:
        # Some providers finish a turn only when the next one starts. A person wants the
        # line where it was said: when anything else happens, the partial turns so far
        # are printed for good (and not printed again when their `done` arrives).
        for key, text in list(self._partial.items()):
            if key == keep:
                continue
            del self._partial[key]
            self._settled[key] = text
            self._say(key[0], text)

    def show(self, event: BaseEvent) -> None:
        d = event.__dict__
        kind = event.type
        pad = self._indent
        if kind == "audio.delta":
            return
        if self._partial and kind != "transcript.done":
            key = (d["role"], d["turn"]) if kind == "transcript.delta" else None
            self._settle_partials(keep=key)
        if kind == "status":
            state = d["state"]
            if state == "provisioning":
                if self._provisioning is None:
                    self._provisioning = time.monotonic()
                    self.line(f"{pad}● provisioning")
                if d["provider_status"]:
                    changed = (d["provider_status"], d["queued"]) != (
                        self._provider_status,
                        self._queued,
                    )
                    self._provider_status, self._queued = d["provider_status"], d["queued"]
                    if changed and not self.live:
                        queued = " · queued for capacity" if d["queued"] else ""
                        waited = f" ({d['waited_s']:.1f}s)" if d["waited_s"] is not None else ""
                        self.line(f"{pad}  … {d['provider_status']}{queued}{waited}")
            elif state == "running":
                deadline = self.deadlines.get(self._node or "", None)
                limit = f" · deadline {deadline:g}s (max_duration)" if deadline else ""
                self.line(f"{pad}● call running{limit}")
        elif kind == "ready":
            self._provisioning = None
            self._provider_status, self._queued = None, False
            waited = f" after {d['waited_s']:.1f}s" if d["waited_s"] is not None else ""
            self.line(f"{pad}● ready{waited}")
            creds = d["credentials"]
            if creds is not None:
                shown = ", ".join(f"{k}={v}" for k, v in creds.public.items())
                hidden = ", ".join(f"{k}=…" for k in creds.secrets)
                sep = ", " if hidden and shown else ""
                self.line(f"{pad}  frontend joins with {creds.kind}: {shown}{sep}{hidden}")
        elif kind == "transcript.delta":
            key = (d["role"], d["turn"])
            self._partial[key] = self._partial.get(key, "") + d["text"]
            if self.live:
                self._redraw()
        elif kind == "transcript.done":
            key = (d["role"], d["turn"])
            self._partial.pop(key, None)
            settled = self._settled.pop(key, None)
            if settled is None or not d["text"].startswith(settled):
                self._say(d["role"], d["text"])
            elif d["text"] != settled:
                self._say(d["role"], "… " + d["text"][len(settled) :].lstrip())
        elif kind == "tool.call":
            self.tool_calls += 1
            self.line(f"{pad}  ⚙ tool {d['name']}({_arguments(d['arguments'])})")
        elif kind == "tool.result":
            if d["error"] is None:
                self.line(f"{pad}    ↳ {_short(d['output'])}  [{d['duration_ms']:.1f} ms]")
            else:
                self.line(f"{pad}    ↳ {d['error_type'] or 'error'}: {_short(d['error'])}")
        elif kind == "client_event":
            self.line(f"{pad}  ⇢ client event {d['name']}({_arguments(d['args'])})")
        elif kind == "error":
            fatal = "fatal " if d["fatal"] else ""
            self.line(f"{pad}  ! {fatal}error {d['code'] or ''}: {d['message']}")
        elif kind == "ended":
            self._provisioning = None
            self._settled.clear()
            if d["outcome"] == "failed":
                why = f" — {d['failure']}" if d["failure"] else ""
                self.line(self._red(f"{pad}✗ ended: failed ({d['reason']}){why}"))
            else:
                self.line(f"{pad}● ended: {d['outcome']} ({d['reason']})")


def _failed(value: Any) -> bool:
    if isinstance(value, SessionResult):
        return value.outcome == "failed"
    return isinstance(value, dict) and value.get("outcome") == "failed" and "session_id" in value


def format_result(result: SessionResult, *, title: str = "summary") -> str:
    """A short, human summary of a session: outcome, duration, tools called."""
    calls: dict[str, list[str]] = {}
    for call in result.tool_calls:
        calls.setdefault(call.name, []).append(
            "ok" if call.error is None else (call.error_type or "error")
        )
    tools = ", ".join(
        f"{name} x{len(outcomes)}"
        + (
            f" ({', '.join(o for o in outcomes if o != 'ok')})"
            if any(o != "ok" for o in outcomes)
            else ""
        )
        for name, outcomes in calls.items()
    )
    turns = {"user": 0, "assistant": 0}
    for turn in result.transcript:
        if turn.text and turn.role in turns:
            turns[turn.role] += 1
    lines = [
        f"── {title} " + "─" * max(8, 48 - len(title)),
        f"  outcome    {result.outcome}" + (f" — {result.failure}" if result.failure else ""),
        f"  duration   {result.duration_s if result.duration_s is not None else '?'}s",
        f"  turns      {turns['assistant']} avatar, {turns['user']} user",
        f"  tools      {len(result.tool_calls)} call(s){': ' + tools if tools else ''}",
    ]
    if result.client_events:
        names = ", ".join(str(e.get("name")) for e in result.client_events)
        lines.append(f"  client     {names}")
    if result.failure_code:
        lines.append(f"  failure    {result.failure_code}")
    if result.dropped_audio:
        lines.append(f"  audio      {result.dropped_audio} delta(s) dropped by a slow reader")
    return "\n".join(lines)


class JsonView:
    """One JSON object per line per event (secrets masked, audio summarized)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def emit(self, data: dict[str, Any]) -> None:
        print(json.dumps(redact_mapping(data), ensure_ascii=False), file=self.out, flush=True)

    def graph_event(self, event: GraphEvent) -> None:
        self.emit(event.as_json())

    def __call__(self, event: BaseEvent, **context: Any) -> None:
        if event.type == "audio.delta":
            size = len(event.__dict__["data"]) * 3 // 4
            data: dict[str, Any] = {"type": "audio.delta", "bytes": size}
        else:
            data = jsonable(event.model_dump(mode="python"))
        data.update(context)
        self.emit(data)


class SessionLedger:
    """A plugin of the command's host that notes every session that started and how it
    ended, so that an interrupted command can say which sessions it ended (each through
    its cancel path) and which it could not."""

    def __init__(self) -> None:
        self.started: dict[str, str] = {}  # session id -> provider
        self.ended: list[SessionResult] = []

    @hookimpl
    def masquerade_session_event(self, session: Any, event: BaseEvent) -> None:
        self.started.setdefault(session.id, session.provider)

    @hookimpl
    def masquerade_session_ended(self, session: Any, result: SessionResult) -> None:
        self.ended.append(result)

    def report(self) -> list[str]:
        """Lines for people: one per session the command started."""
        lines = []
        ended = {r.session_id: r for r in self.ended}
        for session_id, provider in self.started.items():
            result = ended.get(session_id)
            if result is None:
                lines.append(f"session {session_id} ({provider}): its cancel path did not finish")
                continue
            remote = result.provider_session_id
            remote = f", provider id {remote}" if remote else ""
            lines.append(
                f"session {session_id} ({provider}{remote}) was ended through its cancel "
                f"path: {result.outcome} ({result.reason})"
            )
        return lines


#: The ledger of the command that runs in this process (reset by ``masquerade.cli.main``).
LEDGER = SessionLedger()
