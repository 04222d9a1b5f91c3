"""Options of an OpenAI Realtime session and the GA ``session`` payload built from them.

Options come from three places, later ones winning: the provider's defaults
(``OpenAIRealtimeProvider(voice="ash", ...)``), the request's own fields (``model``,
``personality`` as the instructions), and ``SessionRequest.options``::

    SessionRequest(
        provider="openai",
        personality="You are a concise concierge.",
        options={"voice": "marin", "turn_detection": "semantic_vad",
                 "renewal": {"max_reconnects": 3}},
    )
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from masquerade import ConfigurationError, register_secret

from ._conversation import BYTES_PER_MS
from ._shared import per_object

__all__ = [
    "RealtimeOptions",
    "RenewalPolicy",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "audio_format",
    "websocket_url",
    "resolve_api_key",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-realtime"

_LEGACY_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "audio/pcm": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "audio/pcma": {"type": "audio/pcma"},
}


def audio_format(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """A GA audio format object from a legacy name (``pcm16``, ``g711_ulaw``...), a GA
    type name (``audio/pcm``), or a format object."""
    if isinstance(value, Mapping):
        return dict(value)
    try:
        return dict(_LEGACY_FORMATS[value])
    except KeyError:
        raise ConfigurationError(
            f"unknown audio format {value!r}",
            hint="use pcm16 (24 kHz PCM), g711_ulaw or g711_alaw, or a GA format object",
        ) from None


class RenewalPolicy(BaseModel):
    """How a session survives dropped connections and the 60-minute session limit.

    A GA Realtime session ends after 60 minutes, and a new connection starts an empty
    session. When the connection closes with a recoverable code (1001, 1005, 1006, 1011,
    1012, 1013, 1015), when the server reports that the session expired, or when
    ``renew_after`` seconds have passed on one connection (at the next idle moment), the
    provider opens a new connection, configures it like the first one, and replays the
    conversation items (messages as text, function calls and their outputs), so the call
    continues with its context. Sessions attached to a SIP or WebRTC call by ``call_id``
    re-attach to the same call, which keeps its own context, so nothing is replayed.

    Attributes:
        enabled: reconnect at all (``False``: a recoverable close fails the session).
        max_reconnects: reconnections allowed over the session's whole life; the next
            drop after that fails the session.
        attempts: connection attempts per reconnection, with exponential backoff.
        backoff_initial: seconds before the second attempt (doubling each time).
        backoff_max: cap on the backoff delay, in seconds.
        renew_after: seconds on one connection after which it is renewed proactively at
            the next idle moment (no response, tool call or playback in progress);
            ``None`` disables proactive renewal. The default leaves 5 minutes of margin
            before the server's 60-minute limit.
        idle_grace: seconds to wait for an idle moment once ``renew_after`` has passed,
            before renewing anyway.
        resume_response: after a reconnection that lost a response in progress, ask the
            model to respond again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    max_reconnects: int = Field(default=5, ge=0)
    attempts: int = Field(default=4, ge=1)
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)
    renew_after: float | None = Field(default=55 * 60.0, gt=0)
    idle_grace: float = Field(default=120.0, ge=0)
    resume_response: bool = True


TurnDetection = dict[str, Any] | None


class RealtimeOptions(BaseModel):
    """Everything that configures one OpenAI Realtime session.

    Attributes:
        api_key: the API key (default: ``OPENAI_API_KEY``). Kept secret: it never appears
            in a repr, log line or error.
        base_url: the REST base URL (default: ``OPENAI_BASE_URL`` or
            ``https://api.openai.com/v1``); the websocket URL is derived from it the way
            the official SDK does (``https`` -> ``wss``, plus ``/realtime``).
        websocket_url: the websocket endpoint, when it is not derived from ``base_url``.
        model: the Realtime model (``gpt-realtime`` by default).
        call_id: attach to an existing SIP or WebRTC call instead of starting a session
            (``?call_id=`` instead of ``?model=``); audio formats are then left to the call.
        transport: ``"websocket"`` (default): the backend holds the whole session over a
            websocket. ``"webrtc"``: a browser frontend holds the audio over WebRTC and the
            backend attaches a *sideband* websocket to the same call (see
            :meth:`OpenAIRealtimeSession.answer_offer`); the session is ready once the call
            exists, and audio formats are left to the call.
        instructions: the system instructions (default: the request's ``personality``).
        voice: the output voice (a name or ``{"id": ...}``).
        output_modalities: ``["audio"]`` (audio plus its transcript) or ``["text"]``.
        input_audio_format, output_audio_format: ``pcm16`` (24 kHz), ``g711_ulaw``,
            ``g711_alaw`` or a GA format object.
        turn_detection: ``server_vad``, ``semantic_vad``, a GA turn-detection object, or
            ``None`` for manual turns (``commit()`` + ``create_response()``).
        transcription: input transcription settings, or ``None`` for none.
        noise_reduction: ``{"type": "near_field" | "far_field"}`` or ``None``.
        tool_choice: ``auto``, ``none``, ``required`` or a forced function.
        max_output_tokens: per-response cap (1-4096 or ``"inf"``).
        session: extra GA session fields, merged last (``tracing``, ``truncation``...).
        store_audio: keep the assistant's audio in the conversation store
            (``ConversationItem.audio``). Off by default: ``audio.delta`` events carry
            the audio either way, an hour of 24 kHz speech is ~170 MB of base64 per
            session, and retaining every delta costs several microseconds each. The
            store always counts the audio received (``audio_ms()``, used by barge-in).
        headers: extra handshake headers.
        renewal: the :class:`RenewalPolicy`.
        hangup_on_end: for ``call_id`` sessions, hang up the call when the session ends.
        open_timeout, handshake_timeout: seconds for the websocket to open, and for
            ``session.created`` + ``session.updated`` to arrive.
        ping_interval, ping_timeout: websocket keepalive (``None`` disables it).
        close_timeout: seconds to wait for the closing handshake.
        max_size: largest incoming message in bytes (``conversation.item.retrieved`` can
            carry a whole item's audio); ``None`` for no limit.
        compression: ``None`` (default; audio does not compress) or ``"deflate"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    base_url: str | None = None
    websocket_url: str | None = None
    model: str | None = None
    call_id: str | None = None
    transport: Literal["websocket", "webrtc"] = "websocket"
    instructions: str | None = None
    voice: str | dict[str, Any] | None = "alloy"
    output_modalities: list[Literal["audio", "text"]] = Field(
        default_factory=lambda: ["audio"]  # type: ignore[arg-type]
    )
    input_audio_format: str | dict[str, Any] | None = None
    output_audio_format: str | dict[str, Any] | None = None
    turn_detection: str | dict[str, Any] | None = "server_vad"
    transcription: dict[str, Any] | None = Field(
        default_factory=lambda: {"model": "gpt-4o-mini-transcribe"}
    )
    noise_reduction: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] = "auto"
    max_output_tokens: int | Literal["inf"] | None = None
    session: dict[str, Any] = Field(default_factory=dict)
    store_audio: bool = False
    headers: dict[str, str] = Field(default_factory=dict)
    renewal: RenewalPolicy = Field(default_factory=RenewalPolicy)
    hangup_on_end: bool = True
    open_timeout: float = Field(default=10.0, gt=0)
    handshake_timeout: float = Field(default=15.0, gt=0)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = Field(default=3.0, gt=0)
    max_size: int | None = Field(default=16 * 2**20, ge=8 * 2**20)
    compression: Literal["deflate"] | None = None

    @field_validator("api_key", mode="before")
    @classmethod
    def _remember_key(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            register_secret(raw)
        return value

    @classmethod
    def build(cls, *layers: Mapping[str, Any]) -> RealtimeOptions:
        """Merge option layers (later wins) and validate them into clear errors."""
        merged: dict[str, Any] = {}
        for layer in layers:
            for key, value in layer.items():
                if key == "renewal" and isinstance(value, Mapping):
                    base = merged.get("renewal")
                    if isinstance(base, RenewalPolicy):
                        base = base.model_dump()
                    merged["renewal"] = {**(base or {}), **value}
                else:
                    merged[key] = value
        unknown = sorted(set(merged) - set(cls.model_fields))
        if unknown:
            raise ConfigurationError(
                f"unknown OpenAI Realtime option(s): {', '.join(unknown)}",
                hint="accepted options: " + ", ".join(sorted(cls.model_fields)),
            )
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(
                f"invalid OpenAI Realtime options: {problems}",
                hint="see masquerade_openai.RealtimeOptions for the accepted values",
            ) from None

    # ------------------------------------------------------------ derived values
    @property
    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )

    @property
    def resolved_model(self) -> str:
        return self.model or DEFAULT_MODEL

    @property
    def server_interrupts(self) -> bool:
        """Whether the server cancels a response itself when the user starts speaking."""
        detection = self.turn_detection_payload()
        if detection is None:
            return False
        return bool(detection.get("interrupt_response", True))

    def turn_detection_payload(self) -> TurnDetection:
        value = self.turn_detection
        if value is None or value in ("none", "manual"):
            return None
        if isinstance(value, str):
            if value not in ("server_vad", "semantic_vad"):
                raise ConfigurationError(
                    f"unknown turn detection {value!r}",
                    hint="use server_vad, semantic_vad, a GA object, or None for manual turns",
                )
            return {"type": value}
        return dict(value)

    def output_bytes_per_ms(self) -> float:
        fmt = audio_format(self.output_audio_format or "pcm16")
        return BYTES_PER_MS.get(str(fmt.get("type")), 8.0)

    def session_payload(self, instructions: str | None) -> dict[str, Any]:
        """The GA ``session`` object of the configuring ``session.update``."""
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": list(self.output_modalities),
            "tool_choice": self.tool_choice,
        }
        text = self.instructions if self.instructions is not None else instructions
        if text is not None:
            session["instructions"] = text
        if self.max_output_tokens is not None:
            session["max_output_tokens"] = self.max_output_tokens
        audio_in: dict[str, Any] = {
            "turn_detection": self.turn_detection_payload(),
            "transcription": self.transcription,
        }
        if self.noise_reduction is not None:
            audio_in["noise_reduction"] = self.noise_reduction
        audio_out: dict[str, Any] = {}
        if self.voice is not None:
            audio_out["voice"] = self.voice
        # A call keeps the codec its SIP or WebRTC leg negotiated.
        on_call = self.call_id is not None or self.transport == "webrtc"
        if not on_call or self.input_audio_format is not None:
            audio_in["format"] = audio_format(self.input_audio_format or "pcm16")
        if not on_call or self.output_audio_format is not None:
            audio_out["format"] = audio_format(self.output_audio_format or "pcm16")
        session["audio"] = {"input": audio_in, "output": audio_out}
        return deep_merge(session, self.session)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``, merging nested objects instead of replacing them."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def websocket_url(options: RealtimeOptions) -> str:
    """The websocket URL with its query (``model=`` or ``call_id=``)."""
    # Once per options object: the provider shares its options between sessions.
    return per_object(_URLS, id(options), options, lambda: _websocket_url(options))


_URLS: dict[int, tuple[RealtimeOptions, str]] = {}


def _websocket_url(options: RealtimeOptions) -> str:
    from urllib.parse import urlencode

    if options.websocket_url:
        base = options.websocket_url.rstrip("/")
    else:
        rest = options.resolved_base_url
        if rest.startswith("https://"):
            rest = "wss://" + rest[len("https://") :]
        elif rest.startswith("http://"):
            rest = "ws://" + rest[len("http://") :]
        base = rest + "/realtime"
    if options.call_id is not None:
        query = {"call_id": options.call_id}
    else:
        query = {"model": options.resolved_model}
    return f"{base}?{urlencode(query)}"


def resolve_api_key(options: RealtimeOptions) -> str:
    """The API key from the options or ``OPENAI_API_KEY``; registered as a secret."""
    key = options.api_key.get_secret_value() if options.api_key is not None else None
    key = key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ConfigurationError(
            "no OpenAI API key: OPENAI_API_KEY is not set and no api_key was given",
            hint="export OPENAI_API_KEY, pass OpenAIRealtimeProvider(api_key=...), or run "
            "against the emulator: `masquerade emulate openai`",
        )
    register_secret(key)
    return key
