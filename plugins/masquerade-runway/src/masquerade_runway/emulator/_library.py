"""The account's library: custom avatars, knowledge documents and uploads, with their wire
shapes (``/v1/avatars``, ``/v1/documents``, ``/v1/uploads``).

A new avatar is ``PROCESSING`` for :attr:`Library.processing_delay` seconds, then
``READY`` (a new reference image processes again). Documents attach to avatars through
``documentIds``; deleting a document detaches it. Uploads are what the official SDK's
``uploads.create_ephemeral`` sends: a ``runway://`` URI usable as ``referenceImage``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._session import iso

__all__ = ["Library", "StoredAvatar", "StoredDocument", "Upload", "VOICE_PRESETS"]

#: Runway's preset voices (``{"type": "runway-live-preset", "presetId": ...}``).
VOICE_PRESETS = (
    "victoria", "vincent", "clara", "drew", "skye", "max", "morgan", "felix", "mia",
    "marcus", "summer", "ruby", "aurora", "jasper", "leo", "adrian", "nina", "emma",
    "blake", "david", "maya", "nathan", "sam", "georgia", "petra", "adam", "zach",
    "violet", "roman", "luna",
)  # fmt: skip


def voice_wire(voice: dict[str, Any]) -> dict[str, Any]:
    """A voice as responses show it (with its display name and description)."""
    if voice.get("type") == "custom":
        return {"type": "custom", "id": voice["id"], "deleted": False, "name": None,
                "description": None}  # fmt: skip
    preset = str(voice.get("presetId"))
    return {
        "type": "runway-live-preset",
        "presetId": preset,
        "name": preset.title(),
        "description": f"The {preset.title()} preset voice.",
    }


@dataclass
class StoredAvatar:
    id: str
    name: str
    personality: str
    voice: dict[str, Any]
    reference_image: str
    created: float  # wall clock
    updated: float
    processing_until: float  # monotonic
    start_script: str | None = None
    document_ids: list[str] = field(default_factory=list)
    image_processing: str = "optimize"
    failure_reason: str | None = None
    forced_status: str | None = None

    def status(self, now: float) -> str:
        if self.forced_status is not None:
            return self.forced_status
        if self.failure_reason is not None:
            return "FAILED"
        return "PROCESSING" if now < self.processing_until else "READY"

    def image_uri(self, base_url: str) -> str:
        return f"{base_url}/_images/{self.id}.png"

    def to_wire(self, base_url: str, now: float) -> dict[str, Any]:
        status = self.status(now)
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": status,
            "personality": self.personality,
            "startScript": self.start_script,
            "voice": voice_wire(self.voice),
            "referenceImageUri": self.image_uri(base_url),
            "processedImageUri": self.image_uri(base_url) if status == "READY" else None,
            "documentIds": list(self.document_ids),
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
        }
        if status == "FAILED":
            out["failureReason"] = self.failure_reason or "The avatar could not be processed"
        return out


@dataclass
class StoredDocument:
    id: str
    name: str
    content: str
    created: float
    updated: float

    def to_wire(self, used_by: list[dict[str, Any]], *, content: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": "text",
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "usedBy": used_by,
        }
        if content:
            out["content"] = self.content
        return out


@dataclass
class Upload:
    id: str
    filename: str
    token: str
    size: int | None = None  # None until the file arrived
    content_type: str | None = None

    @property
    def uri(self) -> str:
        return f"runway://uploads/{self.id}/{self.filename}"


class Library:
    """Avatars, documents and uploads of the emulated account (thread-safe)."""

    def __init__(self, lock: threading.RLock, *, processing_delay: float = 0.05) -> None:
        self.lock = lock
        self.processing_delay = processing_delay
        self.avatars: dict[str, StoredAvatar] = {}
        self.documents: dict[str, StoredDocument] = {}
        self.uploads: dict[str, Upload] = {}

    # ------------------------------------------------------------ avatars
    def add_avatar(self, fields: dict[str, Any], *, avatar_id: str | None = None) -> StoredAvatar:
        now = time.time()
        avatar = StoredAvatar(
            id=avatar_id or str(uuid.uuid4()),
            name=fields["name"],
            personality=fields["personality"],
            voice=dict(fields["voice"]),
            reference_image=fields["referenceImage"],
            created=now,
            updated=now,
            processing_until=time.monotonic() + self.processing_delay,
            start_script=fields.get("startScript"),
            document_ids=list(fields.get("documentIds") or ()),
            image_processing=fields.get("imageProcessing") or "optimize",
        )
        with self.lock:
            self.avatars[avatar.id] = avatar
        return avatar

    def update_avatar(self, avatar: StoredAvatar, fields: dict[str, Any]) -> None:
        with self.lock:
            if "name" in fields:
                avatar.name = fields["name"]
            if "personality" in fields:
                avatar.personality = fields["personality"]
            if "voice" in fields:
                avatar.voice = dict(fields["voice"])
            if "startScript" in fields:
                avatar.start_script = fields["startScript"]  # None clears it
            if "documentIds" in fields:
                avatar.document_ids = list(fields["documentIds"])
            if "imageProcessing" in fields:
                avatar.image_processing = fields["imageProcessing"]
            if "referenceImage" in fields:
                avatar.reference_image = fields["referenceImage"]
                avatar.processing_until = time.monotonic() + self.processing_delay
            avatar.updated = time.time()

    def avatar_wire(self, avatar: StoredAvatar, base_url: str) -> dict[str, Any]:
        with self.lock:
            return avatar.to_wire(base_url, time.monotonic())

    # ------------------------------------------------------------ documents
    def add_document(self, name: str, content: str) -> StoredDocument:
        now = time.time()
        document = StoredDocument(str(uuid.uuid4()), name, content, now, now)
        with self.lock:
            self.documents[document.id] = document
        return document

    def delete_document(self, document_id: str) -> None:
        with self.lock:
            self.documents.pop(document_id, None)
            for avatar in self.avatars.values():
                if document_id in avatar.document_ids:
                    avatar.document_ids.remove(document_id)

    def used_by(self, document_id: str, base_url: str) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            return [
                {
                    "id": a.id,
                    "name": a.name,
                    "imageUrl": a.image_uri(base_url) if a.status(now) == "READY" else None,
                }
                for a in self.avatars.values()
                if document_id in a.document_ids
            ]

    def document_wire(
        self, document: StoredDocument, base_url: str, *, content: bool = True
    ) -> dict[str, Any]:
        return document.to_wire(self.used_by(document.id, base_url), content=content)

    def missing_documents(self, ids: list[str]) -> list[str]:
        with self.lock:
            return [i for i in ids if i not in self.documents]

    # ------------------------------------------------------------ uploads
    def start_upload(self, filename: str) -> Upload:
        upload = Upload(str(uuid.uuid4()), filename, uuid.uuid4().hex)
        with self.lock:
            self.uploads[upload.token] = upload
        return upload

    def uploaded(self, uri: str) -> Upload | None:
        """The finished upload ``uri`` names (``runway://uploads/{id}/{filename}``)."""
        with self.lock:
            for upload in self.uploads.values():
                if upload.uri == uri and upload.size is not None:
                    return upload
        return None
