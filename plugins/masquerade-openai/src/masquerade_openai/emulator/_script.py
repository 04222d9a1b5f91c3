"""The emulator's scripted model: what it says and which tools it calls.

The model looks at the latest user turn (typed text, or the transcript the script assigns
to committed audio) and answers by the first matching rule, else by the built-in
behaviour:

=====================================  ================================================
user says                              the model
=====================================  ================================================
``call NAME {"json": "args"}``         calls tool ``NAME`` with those arguments
``what did I say`` (any case)          repeats the user's previous turn (shows that the
                                       conversation context survived a renewal)
``bench audio N`` / ``bench text N``   streams N audio deltas (with transcript deltas)
                                       or N text deltas, as fast as possible (load)
anything else                          ``default_reply`` (``"You said: {text}"``)
=====================================  ================================================

After tool outputs it says ``after_tool`` (``"{name} returned {output}"``) for each. A
``response.create`` whose instructions start with ``Say exactly:`` is spoken verbatim.
When the response's context has no user turn (``input: []``), the response's instructions
stand in for it. The model calls only tools the session (or the response) declares, and
none when ``tool_choice`` is ``"none"``: it says ``no_tool`` instead.

A script file (JSON) for ``masquerade emulate openai --script FILE``::

    {"rules": [{"match": "order", "tool": "lookup_order",
                "arguments": {"order_id": "A1001"}, "after": "It ships tomorrow."},
               {"match": "hello", "say": "Hi! How can I help?"}],
     "transcripts": ["where is my order"],
     "pace": 0.02}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmulatorScript", "Rule", "ToolStep", "Output", "plan_response"]


class ToolStep(BaseModel):
    """One function call the model makes."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class Rule(BaseModel):
    """When the user's turn contains ``match`` (case-insensitive; ``*`` matches anything),
    say ``say`` and/or call ``tool`` (or several ``tools`` at once); after the tool
    outputs, say ``after`` (default: the script's ``after_tool``)."""

    model_config = ConfigDict(extra="forbid")

    match: str
    say: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    tools: list[ToolStep] = Field(default_factory=list)
    after: str | None = None

    def steps(self) -> list[ToolStep]:
        steps = list(self.tools)
        if self.tool:
            steps.insert(0, ToolStep(name=self.tool, arguments=self.arguments))
        return steps


class EmulatorScript(BaseModel):
    """How the emulator's model behaves (all fields optional).

    Attributes:
        rules: checked in order against the user's latest turn.
        default_reply: the answer when no rule matches (``{text}`` is the turn).
        after_tool: what the model says about each tool output.
        no_tool: what the model says instead of calling a tool it was not given.
        call_undeclared_tools: call tools the session did not declare anyway (a model
            that invents a tool name), except when ``tool_choice`` is ``"none"``.
        transcripts: what the model "hears" in committed user audio, in order (then
            ``"(inaudible)"``); also sent as input transcriptions when enabled.
        ms_per_word: spoken length of each word; each audio delta is 100 ms of audio.
        pace: seconds between audio (or text) deltas; 0 streams as fast as possible,
            like the real server, which is faster than real time.
        max_session_s: the session time limit (the real service: 60 minutes).
        opening: steps the emulator plays by itself once the session is configured
            (``say``, ``caller``, ``tool``, ``hangup``; see ``emulator._autoplay``).
    """

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    default_reply: str = "You said: {text}"
    after_tool: str = "{name} returned {output}"
    no_tool: str = "I cannot use {name} here."
    call_undeclared_tools: bool = False
    transcripts: list[str] = Field(default_factory=list)
    ms_per_word: int = Field(default=300, ge=1)
    pace: float = Field(default=0.0, ge=0)
    max_session_s: float = Field(default=3600.0, gt=0)
    opening: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> EmulatorScript:
        return cls.model_validate(json.loads(Path(path).read_text()))


class Output(BaseModel):
    """One output item the model will produce."""

    kind: str  # "message" | "function_call"
    text: str = ""
    name: str = ""
    arguments: str = ""
    deltas: int | None = None  # bench: exact number of deltas


_CALL = re.compile(r"^\s*call\s+([A-Za-z0-9_\-]+)\s*(.*)$", re.IGNORECASE | re.DOTALL)
_BENCH = re.compile(r"^\s*bench\s+(audio|text)\s+(\d+)\s*$", re.IGNORECASE)


def _item_text(item: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for part in item.get("content") or ():
        if isinstance(part, Mapping):
            value = part.get("text") or part.get("transcript")
            if isinstance(value, str):
                parts.append(value)
    return " ".join(parts)


def plan_response(
    script: EmulatorScript,
    items: Sequence[Mapping[str, Any]],
    instructions: str | None,
    rule_for_call: dict[str, Rule],
    tools: set[str] | None = None,
) -> tuple[list[Output], Rule | None]:
    """Decide the outputs of one response from its context (``items``).

    ``tools``: the names of the tools the model may call (``None``: any).
    """
    outputs, rule = _plan(script, items, instructions, rule_for_call)
    if tools is None:
        return outputs, rule
    allowed: list[Output] = []
    for output in outputs:
        if output.kind == "function_call" and output.name not in tools:
            allowed.append(Output(kind="message", text=script.no_tool.format(name=output.name)))
        else:
            allowed.append(output)
    return allowed, rule


def _plan(
    script: EmulatorScript,
    items: Sequence[Mapping[str, Any]],
    instructions: str | None,
    rule_for_call: dict[str, Rule],
) -> tuple[list[Output], Rule | None]:
    if instructions and instructions.startswith("Say exactly:"):
        return [Output(kind="message", text=instructions[len("Say exactly:") :].strip())], None
    # Tool outputs since the model last spoke: talk about them.
    outputs: list[Mapping[str, Any]] = []
    for item in reversed(items):
        if item.get("type") == "function_call_output":
            outputs.append(item)
        elif item.get("type") == "message" and item.get("role") in ("assistant", "user"):
            break
    if outputs:
        names = {
            i.get("call_id"): i.get("name") for i in items if i.get("type") == "function_call"
        }
        lines = []
        for out in reversed(outputs):
            name = str(names.get(out.get("call_id")) or "the tool")
            rule = rule_for_call.get(str(out.get("call_id")))
            template = rule.after if rule is not None and rule.after else script.after_tool
            lines.append(template.format(name=name, output=out.get("output", "")))
        return [Output(kind="message", text=" ".join(lines))], None
    users = [i for i in items if i.get("type") == "message" and i.get("role") == "user"]
    text = _item_text(users[-1]) if users else (instructions or "")
    bench = _BENCH.match(text)
    if bench:
        count = int(bench.group(2))
        return [Output(kind="message", text=bench.group(1).lower(), deltas=count)], None
    lowered = text.lower()
    for rule in script.rules:
        if rule.match == "*" or rule.match.lower() in lowered:
            planned: list[Output] = []
            if rule.say:
                planned.append(Output(kind="message", text=rule.say))
            for step in rule.steps():
                arguments = (
                    step.arguments if isinstance(step.arguments, str)
                    else json.dumps(step.arguments)
                )
                planned.append(Output(kind="function_call", name=step.name, arguments=arguments))
            return planned or [Output(kind="message", text="")], rule
    call = _CALL.match(text)
    if call:
        arguments = call.group(2).strip() or "{}"
        return [Output(kind="function_call", name=call.group(1), arguments=arguments)], None
    if "what did i say" in lowered:
        earlier = [_item_text(u) for u in users[:-1] if _item_text(u)]
        reply = f"Earlier you said: {earlier[-1]}" if earlier else "You have not said anything yet."
        return [Output(kind="message", text=reply)], None
    return [Output(kind="message", text=script.default_reply.format(text=text))], None
