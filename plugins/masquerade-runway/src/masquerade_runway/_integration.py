"""The ``integration`` session option: your own agent speaks through the Runway avatar.

Runway renders the avatar; the integration owns the conversation (or its audio)::

    from masquerade_runway import ElevenLabsIntegration, LiveKitIntegration

    # An agent of yours in a LiveKit room you control (any LLM, an OpenAI Realtime
    # agent...): Runway's avatar worker joins that room and publishes the video.
    integration = LiveKitIntegration(
        url="wss://my-project.livekit.cloud", token=worker_token, room_name="support-42",
        agent_identity="my-agent",          # optional: whose audio the avatar lip-syncs
    )
    # An ElevenLabs conversational agent, by its signed URL (valid about 15 minutes).
    integration = ElevenLabsIntegration(signed_url=signed_url)

    AvatarNode("runway", avatar="influencer", options={"integration": integration})

Both are validated the way the API validates them (required fields; ``wss://`` or
``https://`` URLs on a public host), before anything is sent. The token and the signed
URL are secrets: registered for masking and kept as :class:`pydantic.SecretStr`.

A plain mapping works too, in wire form (``{"type": "livekit", "url": ..., "token": ...,
"roomName": ...}``) or with snake_case keys; :func:`parse_integration` turns it into one
of these models.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from masquerade import ConfigurationError, register_secret

__all__ = [
    "LiveKitIntegration",
    "ElevenLabsIntegration",
    "Integration",
    "parse_integration",
    "check_public_url",
    "require_public_url",
]

_SCHEMES = ("wss", "https")


def check_public_url(url: str) -> str | None:
    """Why ``url`` is not a ``wss://``/``https://`` URL on a public host (``None`` if it is).

    Host names are not resolved: ``localhost`` and IP literals in private, loopback,
    link-local or reserved ranges are refused, like the API refuses them once resolved.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "Invalid URL"
    if parts.scheme not in _SCHEMES or not parts.hostname:
        return "Invalid URL: must be a wss:// or https:// URL"
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "Invalid URL: must resolve to a public host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "Invalid URL: must resolve to a public host"
    return None


class _IntegrationBase(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The ``integration`` member of the create body (secrets revealed)."""
        out: dict[str, Any] = {}
        for name, value in self:
            if value is None:
                continue
            field = type(self).model_fields[name]
            key = field.alias or name
            out[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return out


def require_public_url(value: str) -> str:
    """``value`` if :func:`check_public_url` finds nothing wrong, else ``ValueError``."""
    problem = check_public_url(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class LiveKitIntegration(_IntegrationBase):
    """Join an external LiveKit room: Runway publishes the avatar's video there, your
    agent (already in the room) supplies the audio.

    Attributes:
        url: the LiveKit server's ``wss://`` (or ``https://``) URL, on a public host.
        token: a LiveKit access token that lets the avatar worker publish in the room.
        room_name: the room's name.
        agent_identity: the identity of your agent in the room; when given, the avatar
            trusts (lip-syncs) audio from that participant.
    """

    type: Literal["livekit"] = "livekit"
    url: str = Field(min_length=1)
    token: SecretStr
    room_name: str = Field(min_length=1)
    agent_identity: str | None = Field(default=None, min_length=1)

    _url = field_validator("url")(require_public_url)

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret:
            raise ValueError("token must not be empty")
        register_secret(secret)
        return value


class ElevenLabsIntegration(_IntegrationBase):
    """An ElevenLabs conversational agent owns the conversation; Runway renders the avatar.

    Attributes:
        signed_url: the agent's signed websocket URL (``wss://`` or ``https://``, on a
            public host; ElevenLabs makes them valid for about 15 minutes, so create it
            just before the session).
    """

    type: Literal["elevenlabs"] = "elevenlabs"
    signed_url: SecretStr

    @field_validator("signed_url")
    @classmethod
    def _signed_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        require_public_url(url)
        register_secret(url)
        return value


Integration: TypeAlias = Annotated[
    LiveKitIntegration | ElevenLabsIntegration, Field(discriminator="type")
]
_adapter: TypeAdapter[LiveKitIntegration | ElevenLabsIntegration] = TypeAdapter(Integration)


def parse_integration(value: Any) -> LiveKitIntegration | ElevenLabsIntegration:
    """An integration model from a model or a mapping (wire or snake_case keys).

    Raises :class:`~masquerade.ConfigurationError` naming the first problem.
    """
    if isinstance(value, LiveKitIntegration | ElevenLabsIntegration):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"options['integration'] must be a LiveKitIntegration, an ElevenLabsIntegration "
            f"or a mapping, not {type(value).__name__}",
            hint="see masquerade_runway.LiveKitIntegration",
        )
    try:
        return _adapter.validate_python(dict(value))
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "integration"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(
            f"options['integration'] is invalid: {where}: {message}",
            hint="a LiveKit integration needs type='livekit', url (wss:// or https://), "
            "token and room_name; an ElevenLabs one needs type='elevenlabs' and signed_url",
        ) from None
