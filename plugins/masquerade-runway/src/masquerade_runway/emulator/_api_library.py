"""``/v1/avatars`` (CRUD), ``/v1/avatar_usage``, ``/v1/documents`` (CRUD) and
``/v1/uploads`` (plus the upload target the official SDK posts the file to)."""

from __future__ import annotations

import email.message
import email.parser
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._bodies import (
    CreateAvatarBody,
    CreateDocumentBody,
    CreateUploadBody,
    UpdateAvatarBody,
    UpdateDocumentBody,
)
from ._http import endpoint, page, query_date
from ._library import StoredAvatar, StoredDocument
from ._validate import ApiError, parse_body

if TYPE_CHECKING:
    from ._core import Emulator

__all__ = ["library_routes", "usage"]

FoundT = TypeVar("FoundT", StoredAvatar, StoredDocument)
USAGE_RANGE_DAYS = 90
#: A 1x1 transparent PNG: every avatar's (processed) image in the emulator.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
)


def usage(emulator: Emulator, start: datetime, end: datetime) -> dict[str, Any]:
    """``GET /v1/avatar_usage`` for ``[start, end)``: conversations started per UTC day,
    seconds of those that have a duration."""
    days: dict[str, dict[str, Any]] = {}
    day = start.astimezone(UTC).date()
    while datetime(day.year, day.month, day.day, tzinfo=UTC) < end:
        days[day.isoformat()] = {"date": day.isoformat(), "seconds": 0, "sessions": 0}
        day += timedelta(days=1)
    total = seconds = measured = 0
    with emulator.lock:
        sessions = list(emulator.sessions.values())
    for session in sessions:
        if not start.timestamp() <= session.created_wall < end.timestamp():
            continue
        key = datetime.fromtimestamp(session.created_wall, UTC).date().isoformat()
        total += 1
        if key in days:
            days[key]["sessions"] += 1
        if session.duration is not None:
            measured += 1
            seconds += session.duration
            if key in days:
                days[key]["seconds"] += session.duration
    return {
        "totalSessions": total,
        "totalSeconds": seconds,
        "avgDurationSeconds": round(seconds / measured) if measured else 0,
        "byDay": list(days.values()),
    }


def _multipart_file(content_type: str, body: bytes) -> tuple[bytes, str | None] | None:
    """The ``file`` part of a multipart/form-data body: its bytes and content type."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.get_payload():
        if not isinstance(part, email.message.Message):
            continue
        if part.get_param("name", header="content-disposition") == "file":
            data = part.get_payload(decode=True)
            return (data if isinstance(data, bytes) else b""), part.get_content_type()
    return None


def library_routes(emulator: Emulator) -> list[BaseRoute]:
    library = emulator.library
    base = emulator.public_url

    def find(request: Request, store: Mapping[str, FoundT], what: str) -> FoundT:
        with emulator.lock:
            found = store.get(request.path_params["id"])
        if found is None:
            raise ApiError(f"{what} not found", 404)
        return found

    def check_references(fields: dict[str, Any]) -> None:
        missing = library.missing_documents(list(fields.get("documentIds") or ()))
        if missing:
            raise ApiError(f"Document {missing[0]} not found")
        image = fields.get("referenceImage")
        uploaded = not isinstance(image, str) or not image.startswith("runway://")
        if not uploaded and library.uploaded(str(image)) is None:
            raise ApiError(f"Upload {image} not found")

    async def avatars(request: Request) -> Response:
        if request.method == "POST":
            body = parse_body(CreateAvatarBody, await request.body())
            fields = body.model_dump(exclude_none=True)
            check_references(fields)
            return JSONResponse(library.avatar_wire(library.add_avatar(fields), base))
        with emulator.lock:
            found = sorted(library.avatars.values(), key=lambda a: a.created, reverse=True)
        return page([library.avatar_wire(a, base) for a in found], request)

    async def avatar(request: Request) -> Response:
        found = find(request, library.avatars, "Avatar")
        if request.method == "DELETE":
            with emulator.lock:
                library.avatars.pop(found.id, None)
            return Response(status_code=204)
        if request.method == "PATCH":
            changes = parse_body(UpdateAvatarBody, await request.body()).changes()
            check_references(changes)
            library.update_avatar(found, changes)
        return JSONResponse(library.avatar_wire(found, base))

    async def avatar_usage(request: Request) -> Response:
        start = query_date(request, "startDate", required=True)
        end = query_date(request, "endDate", required=True)
        assert start is not None
        assert end is not None
        if end <= start:
            raise ApiError("endDate must be after startDate")
        if end - start > timedelta(days=USAGE_RANGE_DAYS):
            raise ApiError(f"The date range must be at most {USAGE_RANGE_DAYS} days")
        return JSONResponse(usage(emulator, start, end))

    async def documents(request: Request) -> Response:
        if request.method == "POST":
            body = parse_body(CreateDocumentBody, await request.body())
            document = library.add_document(body.name, body.content)
            return JSONResponse(library.document_wire(document, base))
        sort = request.query_params.get("sort", "createdAt")
        order = request.query_params.get("order", "desc")
        if sort not in ("createdAt", "updatedAt"):
            raise ApiError('sort: Invalid option: expected one of "createdAt"|"updatedAt"')
        if order not in ("asc", "desc"):
            raise ApiError('order: Invalid option: expected one of "asc"|"desc"')
        with emulator.lock:
            found = sorted(
                library.documents.values(),
                key=lambda d: d.created if sort == "createdAt" else d.updated,
                reverse=order == "desc",
            )
        return page([library.document_wire(d, base, content=False) for d in found], request)

    async def document(request: Request) -> Response:
        found = find(request, library.documents, "Document")
        if request.method == "DELETE":
            library.delete_document(found.id)
            return Response(status_code=204)
        if request.method == "PATCH":
            body = parse_body(UpdateDocumentBody, await request.body())
            with emulator.lock:
                found.name = body.name if body.name is not None else found.name
                found.content = body.content if body.content is not None else found.content
                found.updated = time.time()
            return Response(status_code=204)  # as the API: no body (the SDK returns None)
        return JSONResponse(library.document_wire(found, base))

    async def uploads(request: Request) -> Response:
        body = parse_body(CreateUploadBody, await request.body())
        upload = library.start_upload(body.filename)
        return JSONResponse(
            {
                "uploadUrl": f"{base}/_uploads/{upload.token}",
                "fields": {"key": f"uploads/{upload.id}/{upload.filename}"},
                "runwayUri": upload.uri,
            }
        )

    async def upload_target(request: Request) -> Response:
        # Stands in for the storage service the upload URL points at (no API key).
        with emulator.lock:
            upload = library.uploads.get(request.path_params["token"])
        if upload is None or upload.size is not None:
            return Response("Invalid or used upload URL", status_code=403)
        found = _multipart_file(request.headers.get("content-type", ""), await request.body())
        if found is None:
            return Response("A multipart body with a 'file' part is required", status_code=400)
        data, content_type = found
        with emulator.lock:
            upload.size, upload.content_type = len(data), content_type
        return Response(status_code=204)

    async def image(request: Request) -> Response:
        return Response(PIXEL, media_type="image/png")

    return [
        Route("/v1/avatars", endpoint(emulator, avatars), methods=["GET", "POST"]),
        Route(
            "/v1/avatars/{id}", endpoint(emulator, avatar), methods=["GET", "PATCH", "DELETE"]
        ),
        Route("/v1/avatar_usage", endpoint(emulator, avatar_usage), methods=["GET"]),
        Route("/v1/documents", endpoint(emulator, documents), methods=["GET", "POST"]),
        Route(
            "/v1/documents/{id}",
            endpoint(emulator, document),
            methods=["GET", "PATCH", "DELETE"],
        ),
        Route("/v1/uploads", endpoint(emulator, uploads), methods=["POST"]),
        Route("/_uploads/{token}", upload_target, methods=["POST"]),
        Route("/_images/{id}.png", image, methods=["GET"]),
    ]
