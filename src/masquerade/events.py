"""The normalized event vocabulary: one set of events for every provider.

Every provider plugin turns its wire events into these models, so that observers,
subscribers, graphs and the CLI never care which provider runs a session::

    async for event in session.events():
        match event:
            case TranscriptDone(role="assistant", text=text):
                print("avatar:", text)
            case ToolCall(name=name, arguments=args):
                print("tool", name, args)

Events are pydantic models discriminated on ``type``. Parsing is lenient
(:func:`parse_event`): an unknown ``type`` becomes a :class:`ProviderEvent` carrying the
raw payload, so a provider that adds events never breaks a session.
Audio stays base64 (as it arrives on the wire) until someone reads
:attr:`AudioDelta.audio`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from .errors import EventParseError

__all__ = [
    "Event",
    "BaseEvent",
    "StatusEvent",
    "ReadyEvent",
    "JoinCredentials",
    "TranscriptDelta",
    "TranscriptDone",
    "SpeechStarted",
    "SpeechStopped",
    "AudioDelta",
    "ResponseStarted",
    "ResponseDone",
    "ToolCall",
    "ToolResult",
    "ClientEvent",
    "ErrorEvent",
    "EndedEvent",
    "ProviderEvent",
    "SessionState",
    "Outcome",
    "Role",
    "EVENT_TYPES",
    "ESSENTIAL_EVENT_TYPES",
    "parse_event",
    "event_adapter",
    "decode_json",
    "json_too_deep",
    "MAX_JSON_DEPTH",
    "MAX_EVENT_BYTES",
]

SessionState: TypeAlias = Literal["created", "provisioning", "ready", "running", "ended"]
Outcome: TypeAlias = Literal["completed", "failed", "cancelled"]
Role: TypeAlias = Literal["user", "assistant", "system"]
_M = TypeVar("_M", bound=BaseModel)


class BaseEvent(BaseModel):
    """Fields every event has. Events are immutable."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str


class StatusEvent(BaseEvent):
    """The session moved to a new state, or the provider reported a new provisioning status.

    ``queued`` is true while the provider holds the session in a queue for capacity.
    ``provider_status`` is the provider's own word (Runway: ``NOT_READY``, ``READY``...).
    """

    type: Literal["status"] = "status"
    state: SessionState
    provider_status: str | None = None
    queued: bool = False
    waited_s: float | None = None


class JoinCredentials(BaseModel):
    """What a frontend needs to join the session.

    Public values (ids, URLs) and secret values (session keys, room tokens) are kept apart;
    secrets are :class:`pydantic.SecretStr`, so they never show in a repr, a log or a span.
    Call :meth:`reveal` only where you hand them to your frontend::

        @app.post("/avatar/session")
        async def start() -> dict[str, str]:
            credentials = await ready  # from on_ready
            return credentials.reveal()  # {"sessionId": ..., "sessionKey": ...}
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    kind: str = Field(description="'session_key', 'livekit', 'websocket', ...")
    public: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    def reveal(self) -> dict[str, str]:
        """All values in wire form, secrets included. Hand this to your frontend only."""
        out = dict(self.public)
        out.update({k: v.get_secret_value() for k, v in self.secrets.items()})
        return out


class ReadyEvent(BaseEvent):
    """The session is ready for the frontend to join. ``credentials`` are what it joins with."""

    type: Literal["ready"] = "ready"
    credentials: JoinCredentials | None = None
    waited_s: float | None = None


class TranscriptDelta(BaseEvent):
    """A piece of text of a turn in progress. ``turn`` identifies the turn within ``role``."""

    type: Literal["transcript.delta"] = "transcript.delta"
    role: Role
    text: str
    turn: int | str | None = None


class TranscriptDone(BaseEvent):
    """A turn is final; ``text`` is its whole text."""

    type: Literal["transcript.done"] = "transcript.done"
    role: Role
    text: str
    turn: int | str | None = None


class SpeechStarted(BaseEvent):
    """The user started speaking (voice activity detected). Used for barge-in."""

    type: Literal["speech.started"] = "speech.started"
    audio_ms: int | None = None
    item_id: str | None = None


class SpeechStopped(BaseEvent):
    """The user stopped speaking."""

    type: Literal["speech.stopped"] = "speech.stopped"
    audio_ms: int | None = None
    item_id: str | None = None


class AudioDelta(BaseEvent):
    """A chunk of output audio, kept base64 as it arrived; :attr:`audio` decodes it once."""

    type: Literal["audio.delta"] = "audio.delta"
    data: str = Field(repr=False)
    response_id: str | None = None
    item_id: str | None = None

    @cached_property
    def audio(self) -> bytes:
        """The decoded audio bytes (decoded on first access, then cached)."""
        return base64.b64decode(self.data)


class ResponseStarted(BaseEvent):
    """The model started a response."""

    type: Literal["response.started"] = "response.started"
    response_id: str | None = None


class ResponseDone(BaseEvent):
    """A response finished. ``status`` is ``completed``, ``cancelled``, ``incomplete`` or
    ``failed``; ``reason`` says why when it did not complete (``turn_detected`` for a
    barge-in). ``usage`` is the provider's token usage when it reports one."""

    type: Literal["response.done"] = "response.done"
    response_id: str | None = None
    status: str = "completed"
    reason: str | None = None
    usage: dict[str, Any] | None = None


class ToolCall(BaseEvent):
    """The model asked to run a tool.

    ``arguments`` is the decoded JSON object, or the raw text when it was not valid JSON
    (the invocation then answers with an error naming the problem).
    """

    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    kind: str | None = None


class ToolResult(BaseEvent):
    """The one answer to a :class:`ToolCall`.

    ``error`` is set (and ``output`` is ``None``) when the call failed; ``error_type`` is
    one of ``arguments``, ``timeout``, ``not_found``, ``exception``, ``cancelled``.
    """

    type: Literal["tool.result"] = "tool.result"
    call_id: str
    name: str
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def output_text(self) -> str:
        """The answer as the model reads it: a string as-is, anything else as JSON, and
        ``{"error": ...}`` for a failure."""
        if self.error is not None:
            return json.dumps({"error": self.error})
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, default=str)


class ClientEvent(BaseEvent):
    """A ``client_event`` tool fired by the model for the frontend (fire-and-forget)."""

    type: Literal["client_event"] = "client_event"
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ErrorEvent(BaseEvent):
    """Something went wrong. ``fatal`` errors end the session; others are reported and the
    session goes on. ``raw`` holds the offending provider payload when there was one."""

    type: Literal["error"] = "error"
    message: str
    code: str | None = None
    fatal: bool = False
    raw: Any = Field(default=None, repr=False)


class EndedEvent(BaseEvent):
    """The session has ended; always the last event of a session."""

    type: Literal["ended"] = "ended"
    outcome: Outcome
    reason: str = ""
    duration_s: float | None = None
    failure_code: str | None = None
    failure: str | None = None


class ProviderEvent(BaseEvent):
    """Any provider event masquerade does not normalize, kept raw (``name`` is its type)."""

    type: Literal["provider"] = "provider"
    name: str
    payload: dict[str, Any] = Field(default_factory=dict, repr=False)


Event: TypeAlias = Annotated[
    StatusEvent
    | ReadyEvent
    | TranscriptDelta
    | TranscriptDone
    | SpeechStarted
    | SpeechStopped
    | AudioDelta
    | ResponseStarted
    | ResponseDone
    | ToolCall
    | ToolResult
    | ClientEvent
    | ErrorEvent
    | EndedEvent
    | ProviderEvent,
    Field(discriminator="type"),
]

_CLASSES: tuple[type[BaseEvent], ...] = (
    StatusEvent,
    ReadyEvent,
    TranscriptDelta,
    TranscriptDone,
    SpeechStarted,
    SpeechStopped,
    AudioDelta,
    ResponseStarted,
    ResponseDone,
    ToolCall,
    ToolResult,
    ClientEvent,
    ErrorEvent,
    EndedEvent,
    ProviderEvent,
)
EVENT_TYPES: dict[str, type[BaseEvent]] = {
    cls.model_fields["type"].default: cls for cls in _CLASSES
}
#: Events that are never dropped under backpressure (everything but audio).
ESSENTIAL_EVENT_TYPES = frozenset(EVENT_TYPES) - {"audio.delta"}

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


#: How deeply provider JSON may nest (objects and arrays). Real frames nest fewer than 10
#: levels; deeper input is refused before it can exhaust the stack anywhere downstream.
MAX_JSON_DEPTH = 64
#: The largest provider frame or message decoded, in characters (or bytes).
MAX_EVENT_BYTES = 16 * 1024 * 1024


def json_too_deep(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON ``value`` nests objects/arrays deeper than ``max_depth``.

    Iterative (never recurses), and it stops at the first path that is too deep.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is dict:
            children: Any = item.values()
        elif kind is list or kind is tuple:
            children = item
        elif kind not in _SCALARS and isinstance(item, Mapping):
            children = item.values()
        else:
            continue
        if depth > max_depth:
            return True
        for child in children:
            if type(child) not in _SCALARS:
                push((child, depth + 1))
    return False


_SCALARS = frozenset({str, int, float, bool, type(None)})


# The slots every pydantic model instance has, set through their descriptors (a bound
# ``__set__`` is about twice as fast as ``object.__setattr__`` with the slot's name).
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted_model(cls: type[_M], fields: dict[str, Any], fields_set: frozenset[str]) -> _M:
    """An instance of ``cls`` made of values already known to be valid, without pydantic's
    validation (what ``model_construct`` does, minus its per-call overhead), for hot paths.

    ``fields`` must hold every field of ``cls`` (it becomes the instance's ``__dict__``:
    do not reuse it); ``fields_set`` is what ``model_fields_set`` reports. Instances of a
    frozen class share one set per ``fields_set`` (nothing can add to it: assignment is
    refused, and ``model_copy(update=...)`` extends a copy); those of a mutable class get
    their own, which an assignment extends.
    """
    model = cls.__new__(cls)
    _SET_DICT(model, fields)
    if cls.model_config.get("frozen"):
        shared = _SHARED_FIELDS_SETS.get((cls, fields_set))
        if shared is None:
            shared = _SHARED_FIELDS_SETS[(cls, fields_set)] = set(fields_set)
        _SET_FIELDS_SET(model, shared)  # kept events hold no set of their own
    else:
        _SET_FIELDS_SET(model, set(fields_set))
    _SET_EXTRA(model, None)
    _SET_PRIVATE(model, None)
    return model


_SHARED_FIELDS_SETS: dict[tuple[type[BaseModel], frozenset[str]], set[str]] = {}


def decode_json(
    data: str | bytes | bytearray,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_bytes: int = MAX_EVENT_BYTES,
) -> Any:
    """Decode JSON from outside (provider frames, data messages, RPC payloads, tool
    arguments) with bounds on size and nesting.

    Raises :class:`~masquerade.EventParseError` (never ``RecursionError``,
    ``UnicodeDecodeError`` or ``MemoryError`` from deep nesting) for text that is too
    large, too deeply nested or not JSON. The check costs two ``count`` calls for
    ordinary frames: the nesting is only walked when the text holds more brackets than
    ``max_depth``.

    >>> decode_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    """
    if len(data) > max_bytes:
        raise EventParseError(
            f"input of {len(data)} bytes exceeds the limit of {max_bytes}",
            raw=_preview(data),
        )
    try:
        value = json.loads(data)
    except RecursionError:
        raise EventParseError(
            f"input nests deeper than {max_depth} levels", raw=_preview(data)
        ) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise EventParseError(f"input is not valid JSON: {exc}", raw=_preview(data)) from None
    if isinstance(value, dict | list):
        if isinstance(data, str):
            brackets = data.count("{") + data.count("[")
        else:
            brackets = data.count(b"{") + data.count(b"[")
        if brackets > max_depth and json_too_deep(value, max_depth):
            raise EventParseError(
                f"input nests deeper than {max_depth} levels", raw=_preview(data)
            )
    return value


def _preview(data: str | bytes | bytearray, limit: int = 2000) -> str:
    if isinstance(data, bytes | bytearray):
        return bytes(data[:limit]).decode("utf-8", "replace")
    return data[:limit]


def parse_event(data: Mapping[str, Any] | str | bytes) -> BaseEvent:
    """Parse one normalized event leniently.

    * JSON text or bytes are decoded first, bounded in size and nesting
      (:func:`decode_json`); a mapping nested deeper than :data:`MAX_JSON_DEPTH` is
      refused the same way.
    * An unknown or missing ``type`` gives a :class:`ProviderEvent` with the raw payload.
    * A known ``type`` with invalid fields, or text that is not a JSON object, raises
      :class:`~masquerade.EventParseError` naming the problem (the session reports it as
      an ``error`` event and goes on).

    >>> parse_event('{"type": "transcript.done", "role": "user", "text": "hi"}').text
    'hi'
    >>> parse_event({"type": "brand.new", "x": 1}).name
    'brand.new'
    """
    if isinstance(data, str | bytes):
        data = decode_json(data)
    elif isinstance(data, Mapping) and json_too_deep(data):
        raise EventParseError(f"event nests deeper than {MAX_JSON_DEPTH} levels", raw=None)
    if not isinstance(data, Mapping):
        raise EventParseError(
            f"event must be a JSON object, got {type(data).__name__}", raw=data
        )
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return ProviderEvent(name=str(kind), payload=dict(data))
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
            for err in exc.errors()
        )
        raise EventParseError(f"invalid {kind!r} event: {problems}", raw=dict(data)) from None
