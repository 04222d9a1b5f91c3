"""``POST /v1/realtime_sessions`` bodies, validated as strictly as the API validates them.

The limits are Runway's (tools reference): 20 tools, 20 parameters per tool, names of 1-64
characters matching ``^[a-zA-Z_][a-zA-Z0-9_]*$`` and unique, descriptions of 1-1024
characters, 20 enum values of at most 64 characters, 20 nested properties per object,
``timeoutSeconds`` 1-8 on ``backend_rpc`` tools only; ``array`` parameters need ``items``
and ``object`` parameters ``properties``. ``integration`` needs its fields and a
``wss://``/``https://`` URL on a public host; the deprecated ``livekit`` key is accepted
and read as a LiveKit integration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from .._integration import require_public_url
from .._request import PRESET_AVATARS
from ._library import VOICE_PRESETS
from ._validate import Strict, check_name

__all__ = [
    "CreateSessionBody",
    "CreateAvatarBody",
    "UpdateAvatarBody",
    "CreateDocumentBody",
    "UpdateDocumentBody",
    "CreateUploadBody",
]

Name = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(min_length=1, max_length=1024)]
MAX_ITEMS = 20


def _unique(kind: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{kind} names must be unique: {', '.join(dupes)}")


def _one_of(value: str, options: Iterable[str]) -> str:
    if value not in options:
        raise ValueError("Invalid option: expected one of " + "|".join(f'"{o}"' for o in options))
    return value


_public_url = require_public_url


class PresetAvatar(Strict):
    type: Literal["runway-preset"]
    presetId: str

    @field_validator("presetId")
    @classmethod
    def _known(cls, value: str) -> str:
        return _one_of(value, sorted(PRESET_AVATARS))


class CustomAvatar(Strict):
    type: Literal["custom"]
    avatarId: str = Field(min_length=1)


class _Parameter(Strict):
    name: Name
    description: Description
    required: bool | None = None

    _name = field_validator("name")(check_name)


class StringParameter(_Parameter):
    type: Literal["string"]
    enum: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=MAX_ITEMS
    )


class IntegerParameter(_Parameter):
    type: Literal["integer"]


class NumberParameter(_Parameter):
    type: Literal["number"]


class BooleanParameter(_Parameter):
    type: Literal["boolean"]


class ArrayItems(Strict):
    type: Literal["string", "integer", "number", "boolean"]


class ArrayParameter(_Parameter):
    type: Literal["array"]
    items: ArrayItems


class ObjectParameter(_Parameter):
    type: Literal["object"]
    properties: list[Parameter] = Field(max_length=MAX_ITEMS)

    @field_validator("properties")
    @classmethod
    def _unique_properties(cls, value: list[Parameter]) -> list[Parameter]:
        _unique("Property", [p.name for p in value])
        return value


Parameter = Annotated[
    StringParameter
    | IntegerParameter
    | NumberParameter
    | BooleanParameter
    | ArrayParameter
    | ObjectParameter,
    Field(discriminator="type"),
]
ObjectParameter.model_rebuild()


class _Tool(Strict):
    name: Name
    description: Description
    parameters: list[Parameter] | None = Field(default=None, max_length=MAX_ITEMS)

    _name = field_validator("name")(check_name)

    @field_validator("parameters")
    @classmethod
    def _unique_parameters(cls, value: list[Parameter] | None) -> list[Parameter] | None:
        _unique("Parameter", [p.name for p in value or ()])
        return value


class ClientEventTool(_Tool):
    type: Literal["client_event"]


class BackendRpcTool(_Tool):
    type: Literal["backend_rpc"]
    timeoutSeconds: StrictFloat | StrictInt | None = Field(default=None, ge=1, le=8)


Tool = Annotated[ClientEventTool | BackendRpcTool, Field(discriminator="type")]


class ElevenLabsIntegration(Strict):
    type: Literal["elevenlabs"]
    signedUrl: str

    _url = field_validator("signedUrl")(_public_url)


class DeprecatedLiveKit(Strict):
    url: str
    token: str = Field(min_length=1)
    roomName: str = Field(min_length=1)
    agentIdentity: str | None = Field(default=None, min_length=1)

    _url = field_validator("url")(_public_url)


class LiveKitIntegration(DeprecatedLiveKit):
    type: Literal["livekit"]


Integration = Annotated[
    ElevenLabsIntegration | LiveKitIntegration, Field(discriminator="type")
]


class CreateSessionBody(Strict):
    model: Literal["gwm1_avatars"]
    avatar: Annotated[PresetAvatar | CustomAvatar, Field(discriminator="type")]
    maxDuration: StrictInt | None = Field(default=None, ge=1, le=1800)
    personality: str | None = None
    startScript: str | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_ITEMS)
    integration: Integration | None = None
    livekit: DeprecatedLiveKit | None = None

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool] | None) -> list[Tool] | None:
        _unique("Tool", [t.name for t in tools or ()])
        return tools

    @model_validator(mode="after")
    def _one_integration(self) -> CreateSessionBody:
        if self.integration is not None and self.livekit is not None:
            raise ValueError("Provide either integration or livekit, not both")
        return self

    def session_body(self) -> dict[str, Any]:
        """The body as the session keeps it: ``livekit`` read as a LiveKit integration."""
        body = self.model_dump(exclude_none=True)
        legacy = body.pop("livekit", None)
        if legacy is not None:
            body["integration"] = {"type": "livekit", **legacy}
        return body


# ---------------------------------------------------------------- avatars and documents
DATA_URI_LIMIT = 5 * 1024 * 1024
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/webp")


def check_reference_image(value: str) -> str:
    """An HTTPS URL (<= 2048 characters), a ``runway://`` upload URI (<= 5000) or a
    base64 image data URI (<= 5 MB), as the API takes them."""
    if value.startswith("https://"):
        if len(value) > 2048:
            raise ValueError("Too big: expected string to have <=2048 characters")
        return _public_url(value)
    if value.startswith("runway://"):
        if len(value) > 5000:
            raise ValueError("Too big: expected string to have <=5000 characters")
        return value
    if value.startswith("data:"):
        if len(value) > DATA_URI_LIMIT:
            raise ValueError("Too big: the data URI must be at most 5MB")
        header, _, data = value.partition(",")
        kind = header[5:].split(";")[0]
        if kind not in _IMAGE_TYPES or not header.endswith(";base64") or not data:
            raise ValueError("Invalid data URI: expected a base64-encoded image")
        return value
    raise ValueError("Invalid input: expected a HTTPS URL, a Runway upload URI or a data URI")


class PresetVoice(Strict):
    type: Literal["runway-live-preset"]
    presetId: str

    @field_validator("presetId")
    @classmethod
    def _known(cls, value: str) -> str:
        return _one_of(value, VOICE_PRESETS)


class CustomVoice(Strict):
    type: Literal["custom"]
    id: str = Field(min_length=1)


Voice = Annotated[PresetVoice | CustomVoice, Field(discriminator="type")]
Text = Annotated[str, Field(min_length=1)]


class CreateAvatarBody(Strict):
    name: Text
    personality: Text
    referenceImage: str
    voice: Voice
    documentIds: list[str] | None = None
    imageProcessing: Literal["optimize", "none"] | None = None
    startScript: str | None = None

    _image = field_validator("referenceImage")(check_reference_image)


class UpdateAvatarBody(Strict):
    name: Text | None = None
    personality: Text | None = None
    referenceImage: str | None = None
    voice: Voice | None = None
    documentIds: list[str] | None = None
    imageProcessing: Literal["optimize", "none"] | None = None
    startScript: str | None = None

    @field_validator("referenceImage")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else check_reference_image(value)

    def changes(self) -> dict[str, Any]:
        """The fields the request set (``startScript: null`` clears the opening line)."""
        changed = self.model_dump(exclude_unset=True)
        return {k: v for k, v in changed.items() if v is not None or k == "startScript"}


class CreateDocumentBody(Strict):
    name: Text
    content: Text


class UpdateDocumentBody(Strict):
    name: Text | None = None
    content: Text | None = None


class CreateUploadBody(Strict):
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    type: Literal["ephemeral"]
