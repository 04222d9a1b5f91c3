"""Custom avatars, knowledge documents, uploads and conversations: the parts of Runway's API
around realtime sessions, typed and async (:class:`RunwayClient` exposes them as
``client.avatars``, ``client.documents``, ``client.uploads`` and ``client.conversations``)::

    async with RunwayClient() as client:
        faq = await client.documents.create(name="FAQ", content="# Returns\\n30 days.")
        avatar = await client.avatars.create(
            name="Ada",
            personality="You are Ada, a patient support agent.",
            reference_image=Path("ada.png"),        # uploaded for you; or an https URL
            voice="clara",                          # a preset voice, or CustomVoice(id=...)
            document_ids=[faq.id],
        )
        avatar = await client.avatars.wait_ready(avatar.id)
        ...
        await client.conversations.download_recording(session_id, "call.mp4")
        await client.conversations.delete(session_id)     # transcript and recording
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import httpx
from pydantic import BaseModel

from ._errors import (
    RunwayConnectionError,
    RunwayError,
    RunwayNotFound,
    RunwayProtocolError,
    RunwayTimeout,
)
from ._models import (
    Avatar,
    AvatarConversation,
    AvatarConversationSummary,
    AvatarUsage,
    CustomVoice,
    Document,
    Page,
    PresetVoice,
)

if TYPE_CHECKING:
    from ._client import RunwayClient

__all__ = [
    "AvatarsAPI",
    "DocumentsAPI",
    "UploadsAPI",
    "ConversationsAPI",
    "ImageSource",
    "VoiceChoice",
    "UNSET",
]

ItemT = TypeVar("ItemT", bound=BaseModel)

#: A reference image: an ``https://`` URL, a ``runway://`` upload URI or a ``data:`` URI
#: (sent as they are), or a file path or bytes (uploaded first).
ImageSource = str | os.PathLike[str] | bytes
#: A voice: a preset's id (``"clara"``) or a :class:`PresetVoice` / :class:`CustomVoice`.
VoiceChoice = str | PresetVoice | CustomVoice


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Leave as it is" for :meth:`AvatarsAPI.update` (``None`` clears ``start_script``).
UNSET = _Unset()


async def _pages(fetch: Callable[[str | None], Awaitable[Page[ItemT]]]) -> AsyncIterator[ItemT]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _voice(voice: VoiceChoice) -> dict[str, Any]:
    if isinstance(voice, str):
        voice = PresetVoice(preset_id=voice)
    return voice.model_dump(by_alias=True)


def _iso_date(value: date | datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


class UploadsAPI:
    """``POST /v1/uploads``: files Runway keeps for a while, named by a ``runway://`` URI."""

    def __init__(self, client: RunwayClient) -> None:
        self._client = client

    async def create_ephemeral(
        self, file: os.PathLike[str] | bytes, *, filename: str | None = None
    ) -> str:
        """Upload ``file`` (a path, or bytes with a ``filename``); return its ``runway://``
        URI, usable as an avatar's reference image."""
        if isinstance(file, bytes):
            data, name = file, filename or "upload.png"
        else:
            path = anyio.Path(file)
            data, name = await path.read_bytes(), filename or path.name
        started = await self._client.request(
            "POST", "/v1/uploads", json={"filename": name, "type": "ephemeral"}
        )
        try:
            answer = started.json()
            upload_url, uri = str(answer["uploadUrl"]), str(answer["runwayUri"])
            fields = {str(k): str(v) for k, v in (answer.get("fields") or {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RunwayProtocolError(
                "Runway's answer to POST /v1/uploads has no uploadUrl and runwayUri",
                hint="the API may have changed; please report it with the masquerade version",
            ) from None
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            # The upload URL is a storage service's: no API key goes there.
            response = await self._client.http.post(
                upload_url, data=fields, files={"file": (name, data, content_type)}
            )
        except httpx.HTTPError as exc:
            raise RunwayConnectionError(
                f"uploading {name} failed ({type(exc).__name__})", retryable=True
            ) from None
        if not response.is_success:
            raise RunwayError(
                f"uploading {name} failed with HTTP {response.status_code}",
                status_code=response.status_code,
                hint="start a new upload; an upload URL works once and expires",
            )
        return uri


class AvatarsAPI:
    """Custom avatars: ``/v1/avatars`` and ``/v1/avatar_usage``."""

    def __init__(self, client: RunwayClient) -> None:
        self._client = client

    async def _image(self, image: ImageSource) -> str:
        if isinstance(image, str):
            return image
        return await self._client.uploads.create_ephemeral(image)

    async def create(
        self,
        *,
        name: str,
        personality: str,
        reference_image: ImageSource,
        voice: VoiceChoice,
        document_ids: Sequence[str] | None = None,
        image_processing: Literal["optimize", "none"] | None = None,
        start_script: str | None = None,
    ) -> Avatar:
        """``POST /v1/avatars``. A path or bytes ``reference_image`` is uploaded first.
        The avatar is ``PROCESSING`` at first: :meth:`wait_ready` waits for ``READY``."""
        body: dict[str, Any] = {
            "name": name,
            "personality": personality,
            "referenceImage": await self._image(reference_image),
            "voice": _voice(voice),
        }
        if document_ids is not None:
            body["documentIds"] = list(document_ids)
        if image_processing is not None:
            body["imageProcessing"] = image_processing
        if start_script is not None:
            body["startScript"] = start_script
        # Never sent twice: a retried create would make a second avatar.
        return await self._client.send_model(Avatar, "POST", "/v1/avatars", body, resend=False)

    async def retrieve(self, avatar_id: str) -> Avatar:
        """``GET /v1/avatars/{id}``."""
        return await self._client.send_model(Avatar, "GET", f"/v1/avatars/{avatar_id}")

    async def update(
        self,
        avatar_id: str,
        *,
        name: str | _Unset = UNSET,
        personality: str | _Unset = UNSET,
        reference_image: ImageSource | _Unset = UNSET,
        voice: VoiceChoice | _Unset = UNSET,
        document_ids: Sequence[str] | _Unset = UNSET,
        image_processing: Literal["optimize", "none"] | _Unset = UNSET,
        start_script: str | _Unset | None = UNSET,
    ) -> Avatar:
        """``PATCH /v1/avatars/{id}``: only what is given changes; ``document_ids``
        replaces every attached document; ``start_script=None`` removes the opening line."""
        body: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            body["name"] = name
        if not isinstance(personality, _Unset):
            body["personality"] = personality
        if not isinstance(reference_image, _Unset):
            body["referenceImage"] = await self._image(reference_image)
        if not isinstance(voice, _Unset):
            body["voice"] = _voice(voice)
        if not isinstance(document_ids, _Unset):
            body["documentIds"] = list(document_ids)
        if not isinstance(image_processing, _Unset):
            body["imageProcessing"] = image_processing
        if not isinstance(start_script, _Unset):
            body["startScript"] = start_script
        return await self._client.send_model(Avatar, "PATCH", f"/v1/avatars/{avatar_id}", body)

    async def list(self, *, limit: int = 20, cursor: str | None = None) -> Page[Avatar]:
        """One page of ``GET /v1/avatars``."""
        params = {"limit": limit, "cursor": cursor}
        return await self._client.send_model(Page[Avatar], "GET", "/v1/avatars", params=params)

    def iter(self, *, limit: int = 20) -> AsyncIterator[Avatar]:
        """Every custom avatar, page after page."""
        return _pages(lambda cursor: self.list(limit=limit, cursor=cursor))

    async def delete(self, avatar_id: str) -> None:
        """``DELETE /v1/avatars/{id}``."""
        await self._client.request("DELETE", f"/v1/avatars/{avatar_id}")

    async def wait_ready(
        self, avatar_id: str, *, timeout: float = 300.0, interval: float = 2.0
    ) -> Avatar:
        """Poll until the avatar is ``READY`` (returned) or ``FAILED`` (raises
        :class:`~masquerade_runway.RunwayError` with its ``failureReason``)."""
        with anyio.fail_after(timeout):
            while True:
                avatar = await self.retrieve(avatar_id)
                if avatar.status == "READY":
                    return avatar
                if avatar.status == "FAILED":
                    raise RunwayError(
                        f"avatar {avatar_id} failed: {avatar.failure_reason or 'no reason given'}",
                        hint="try another reference image (a clear, front-facing face)",
                    )
                await anyio.sleep(interval)

    async def usage(
        self, *, start_date: date | datetime | str, end_date: date | datetime | str
    ) -> AvatarUsage:
        """``GET /v1/avatar_usage`` for ``[start_date, end_date)`` (at most 90 days)."""
        params = {"startDate": _iso_date(start_date), "endDate": _iso_date(end_date)}
        return await self._client.send_model(
            AvatarUsage, "GET", "/v1/avatar_usage", params=params
        )


class DocumentsAPI:
    """Knowledge documents (``/v1/documents``), attached to avatars by ``document_ids``."""

    def __init__(self, client: RunwayClient) -> None:
        self._client = client

    async def create(self, *, name: str, content: str) -> Document:
        """``POST /v1/documents`` (markdown or plain text ``content``)."""
        body = {"name": name, "content": content}
        return await self._client.send_model(
            Document, "POST", "/v1/documents", body, resend=False
        )

    async def retrieve(self, document_id: str) -> Document:
        """``GET /v1/documents/{id}`` (with its ``content`` and the avatars using it)."""
        return await self._client.send_model(Document, "GET", f"/v1/documents/{document_id}")

    async def update(
        self, document_id: str, *, name: str | None = None, content: str | None = None
    ) -> None:
        """``PATCH /v1/documents/{id}``: a new name and/or content."""
        body = {k: v for k, v in {"name": name, "content": content}.items() if v is not None}
        await self._client.request("PATCH", f"/v1/documents/{document_id}", json=body)

    async def list(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        sort: Literal["createdAt", "updatedAt"] = "createdAt",
        order: Literal["asc", "desc"] = "desc",
    ) -> Page[Document]:
        """One page of ``GET /v1/documents`` (items without ``content``)."""
        params = {"limit": limit, "cursor": cursor, "sort": sort, "order": order}
        return await self._client.send_model(
            Page[Document], "GET", "/v1/documents", params=params
        )

    def iter(self, *, limit: int = 20, **order: Any) -> AsyncIterator[Document]:
        """Every document, page after page (``sort``, ``order`` as for :meth:`list`)."""
        return _pages(lambda cursor: self.list(limit=limit, cursor=cursor, **order))

    async def delete(self, document_id: str) -> None:
        """``DELETE /v1/documents/{id}`` (it is detached from every avatar)."""
        await self._client.request("DELETE", f"/v1/documents/{document_id}")


class ConversationsAPI:
    """Avatar conversations (``/v1/avatar_conversations``): one per realtime session, with
    the same id."""

    def __init__(self, client: RunwayClient) -> None:
        self._client = client

    async def retrieve(self, conversation_id: str) -> AvatarConversation:
        """``GET /v1/avatar_conversations/{id}``: transcript, tools, recording URL."""
        return await self._client.retrieve_avatar_conversation(conversation_id)

    async def list(self, **options: Any) -> Page[AvatarConversationSummary]:
        """One page (see :meth:`RunwayClient.list_avatar_conversations`)."""
        return await self._client.list_avatar_conversations(**options)

    def iter(self, **options: Any) -> AsyncIterator[AvatarConversationSummary]:
        """Every conversation (see :meth:`RunwayClient.iter_avatar_conversations`)."""
        return self._client.iter_avatar_conversations(**options)

    async def delete(self, conversation_id: str) -> None:
        """``DELETE /v1/avatar_conversations/{id}``: erase its transcript and recording for
        good (a privacy request). A conversation still in progress cannot be deleted."""
        await self._client.request("DELETE", f"/v1/avatar_conversations/{conversation_id}")

    async def download_recording(
        self,
        conversation_id: str,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        url: str | None = None,
    ) -> int:
        """Save the conversation's recording to ``destination`` (a path or a binary file);
        return the number of bytes written.

        ``url`` is a ``recordingUrl`` you kept (``SessionResult.recording_url``). Those
        expire (Runway: within 24-48 hours): when it is refused, or not given, the
        conversation is fetched again for a fresh URL. Raises
        :class:`~masquerade_runway.RunwayNotFound` when there is no recording (the call
        never started, or the conversation was deleted).
        """
        if url is not None:
            try:
                return await self._download(url, destination)
            except _Expired:
                pass  # refresh it below
        conversation = await self.retrieve(conversation_id)
        if not conversation.recording_url:
            raise RunwayNotFound(
                f"conversation {conversation_id} has no recording (status {conversation.status})",
                hint="a recording exists once a call that started has ended",
            )
        try:
            return await self._download(conversation.recording_url, destination)
        except _Expired:
            raise RunwayError(
                f"the recording of conversation {conversation_id} was refused right after "
                "its URL was refreshed",
                hint="try again later",
            ) from None

    async def _download(
        self, url: str, destination: str | os.PathLike[str] | IO[bytes]
    ) -> int:
        written = 0
        try:
            async with self._client.http.stream("GET", url) as response:
                if response.status_code in (400, 401, 403, 410):
                    raise _Expired
                if response.status_code == 404:
                    raise RunwayNotFound("the recording is gone", status_code=404)
                if not response.is_success:
                    raise RunwayError(
                        f"downloading the recording failed with HTTP {response.status_code}",
                        status_code=response.status_code,
                        retryable=response.status_code >= 500,
                    )
                if isinstance(destination, str | os.PathLike):
                    async with await anyio.open_file(Path(destination), "wb") as out:
                        async for chunk in response.aiter_bytes():
                            await out.write(chunk)
                            written += len(chunk)
                else:
                    async for chunk in response.aiter_bytes():
                        destination.write(chunk)
                        written += len(chunk)
        except httpx.TimeoutException:
            raise RunwayTimeout("downloading the recording timed out", retryable=True) from None
        except httpx.HTTPError as exc:
            raise RunwayConnectionError(
                f"downloading the recording failed ({type(exc).__name__})", retryable=True
            ) from None
        return written


class _Expired(Exception):
    """The recording URL was refused (expired or no longer valid)."""
