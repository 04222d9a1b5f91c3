"""Rendering of session events for people (the CLI's live view) and for machines (JSON)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from ._redact import redact, redact_mapping
from .events import BaseEvent
from .session import SessionResult

__all__ = ["ConsoleView", "JsonView", "format_result"]


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConsoleView:
    """Prints a session's events as a person wants to read them.

    Transcript deltas are shown as they arrive on a terminal (the line is rewritten in
    place) and as whole turns otherwise; tool calls show their arguments and answers;
    provisioning shows elapsed time and queue wait.
    """

    def __init__(self, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self._partial: dict[Any, str] = {}
        self._t0 = time.monotonic()
        self.tool_calls = 0

    def line(self, text: str) -> None:
        self._clear_partial()
        print(redact(text), file=self.out, flush=True)

    def _clear_partial(self) -> None:
        if self.live and self._partial:
            print("\r\x1b[2K", end="", file=self.out)

    def __call__(self, event: BaseEvent) -> None:
        self.show(event)

    def show(self, event: BaseEvent) -> None:
        d = event.__dict__
        kind = event.type
        if kind == "status":
            state = d["state"]
            if state == "provisioning" and d["provider_status"]:
                queued = " · queued for capacity" if d["queued"] else ""
                waited = f" ({d['waited_s']:.1f}s)" if d["waited_s"] is not None else ""
                self.line(f"  … provider status {d['provider_status']}{queued}{waited}")
            elif state in ("provisioning", "running"):
                self.line(f"● {state}")
        elif kind == "ready":
            waited = f" after {d['waited_s']:.1f}s" if d["waited_s"] is not None else ""
            self.line(f"● ready{waited}")
            creds = d["credentials"]
            if creds is not None:
                shown = ", ".join(f"{k}={v}" for k, v in creds.public.items())
                hidden = ", ".join(f"{k}=…" for k in creds.secrets)
                self.line(f"  frontend joins with {creds.kind}: {shown}{', ' if hidden else ''}{hidden}")
        elif kind == "transcript.delta":
            key = (d["role"], d["turn"])
            self._partial[key] = self._partial.get(key, "") + d["text"]
            if self.live:
                print(f"\r\x1b[2K  {d['role']:>9} ▸ {self._partial[key]}", end="", file=self.out,
                      flush=True)
        elif kind == "transcript.done":
            self._clear_partial()
            self._partial.pop((d["role"], d["turn"]), None)
            print(redact(f"  {d['role']:>9} ▸ {d['text']}"), file=self.out, flush=True)
        elif kind == "tool.call":
            self.tool_calls += 1
            self.line(f"  ⚙ tool {d['name']}({_short(d['arguments'])})")
        elif kind == "tool.result":
            if d["error"] is None:
                self.line(f"    ↳ {_short(d['output'])}  [{d['duration_ms']:.1f} ms]")
            else:
                self.line(f"    ↳ error ({d['error_type']}): {_short(d['error'])}")
        elif kind == "client_event":
            self.line(f"  ⇢ client event {d['name']}({_short(d['args'])})")
        elif kind == "error":
            fatal = "fatal " if d["fatal"] else ""
            self.line(f"  ! {fatal}error {d['code'] or ''}: {d['message']}")
        elif kind == "ended":
            self.line(f"● ended: {d['outcome']} ({d['reason']})")

    def summary(self, result: SessionResult) -> None:
        self.line(format_result(result))


def format_result(result: SessionResult) -> str:
    tools = ", ".join(
        f"{c.name}{'' if c.error is None else ' (' + (c.error_type or 'error') + ')'}"
        for c in result.tool_calls
    )
    lines = [
        "── summary " + "─" * 40,
        f"  outcome    {result.outcome}" + (f" — {result.failure}" if result.failure else ""),
        f"  duration   {result.duration_s}s",
        f"  turns      {len(result.transcript)}",
        f"  tools      {len(result.tool_calls)} call(s){': ' + tools if tools else ''}",
    ]
    if result.failure_code:
        lines.append(f"  failure    {result.failure_code}")
    if result.dropped_audio:
        lines.append(f"  audio      {result.dropped_audio} delta(s) dropped by a slow reader")
    return "\n".join(lines)


class JsonView:
    """One JSON object per line per event (secrets masked, audio summarized)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: BaseEvent, **context: Any) -> None:
        if event.type == "audio.delta":
            data: dict[str, Any] = {"type": "audio.delta", "bytes": len(event.__dict__["data"]) * 3 // 4}
        else:
            data = event.model_dump(mode="json")
        data.update(context)
        print(json.dumps(redact_mapping(data), ensure_ascii=False), file=self.out, flush=True)
