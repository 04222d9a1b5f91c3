"""Signed webhooks (the standard-webhooks scheme OpenAI uses) for incoming SIP calls.

A webhook request carries three headers: ``webhook-id``, ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature`` (space-separated ``v1,<base64>`` values). The signature
is HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` keyed with the secret: for a
``whsec_...`` secret, the bytes that follow the prefix, base64-decoded. Verify before you
trust anything in the body::

    @app.post("/openai/webhook")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            event = verify_webhook(body, request.headers, os.environ["OPENAI_WEBHOOK_SECRET"])
        except WebhookVerificationError:
            return Response(status_code=400)
        await calls.accept(event.call_id, {"model": "gpt-realtime"})
        ...

SIP headers in the event (``event.sip_headers``) come from the caller: treat them as
untrusted input.

**Replays.** A verified webhook's id is remembered until its timestamp leaves the
tolerance window, and the same id is refused meanwhile. The default store
(:class:`MemoryReplayStore`) lives in the process and is bounded; a deployment with
several processes passes a shared store (anything with a ``claim(webhook_id, expires_at)
-> bool`` method, for example one backed by Redis ``SET NX EX``) as ``replay_store=``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from masquerade import MasqueradeError, register_secret
from masquerade.errors import EventParseError
from masquerade.events import decode_json

__all__ = [
    "WebhookEvent",
    "WebhookVerificationError",
    "verify_webhook",
    "sign_webhook",
    "new_webhook_secret",
    "ReplayStore",
    "MemoryReplayStore",
    "DEFAULT_REPLAY_STORE",
]

INCOMING_CALL = "realtime.call.incoming"


class WebhookVerificationError(MasqueradeError, ValueError):
    """A webhook failed verification: missing headers, a bad or stale signature, or a body
    that is not the expected event. Answer the request with HTTP 400 and drop it."""

    default_hint = (
        "check that the webhook secret matches the one configured for the project, that "
        "the body is passed exactly as received (raw bytes), and that the clock is right"
    )


class WebhookEvent(BaseModel):
    """A verified webhook event (``realtime.call.incoming`` for SIP calls)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    type: str
    object: str = "event"
    created_at: int = 0
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def call_id(self) -> str:
        """The call to accept or reject (``data.call_id``)."""
        value = self.data.get("call_id")
        if not isinstance(value, str) or not value:
            raise WebhookVerificationError(
                f"webhook {self.id} ({self.type}) carries no data.call_id",
                hint="only realtime.call.incoming events name a call",
            )
        return value

    @property
    def sip_headers(self) -> dict[str, str]:
        """The caller's SIP headers by name (untrusted input)."""
        headers: dict[str, str] = {}
        entries = self.data.get("sip_headers")
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                headers[entry["name"]] = str(entry.get("value", ""))
        return headers


@runtime_checkable
class ReplayStore(Protocol):
    """Where verified webhook ids are remembered, to refuse replays.

    ``claim`` records ``webhook_id`` until ``expires_at`` (Unix seconds) and returns
    ``True``, or returns ``False`` when the id is already recorded and not expired (a
    replay). It must be atomic: two concurrent claims of one id give one ``True``.

    A store may also offer ``release(webhook_id)``: forget a claim whose webhook could not
    be acted on (the call service releases the id when accepting the call failed, so
    OpenAI's retry of the same delivery is taken instead of refused as a replay).
    """

    def claim(self, webhook_id: str, expires_at: float) -> bool: ...


class MemoryReplayStore:
    """An in-process :class:`ReplayStore` with bounded memory.

    Ids are forgotten when they expire. When ``max_entries`` ids are live at once, the one
    closest to expiry is forgotten first (only a flood of validly *signed* webhooks can
    reach the bound, which needs the signing secret). Thread-safe.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, webhook_id: str, expires_at: float, *, now: float | None = None) -> bool:
        current = time.time() if now is None else now
        with self._lock:
            self._expire(current)
            known = self._expiry.get(webhook_id)
            if known is not None and known >= current:
                return False
            self._expiry[webhook_id] = expires_at
            heapq.heappush(self._heap, (expires_at, webhook_id))
            while len(self._expiry) > self.max_entries:
                self._pop()
            return True

    def release(self, webhook_id: str) -> None:
        """Forget ``webhook_id``'s claim: its next delivery is taken, not a replay."""
        with self._lock:
            self._expiry.pop(webhook_id, None)  # its heap entry goes stale and is skipped

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            self._pop()
        if len(self._heap) > 2 * self.max_entries + 16:  # stale duplicates: compact
            self._heap = [(t, i) for i, t in self._expiry.items()]
            heapq.heapify(self._heap)

    def _pop(self) -> None:
        at, webhook_id = heapq.heappop(self._heap)
        if self._expiry.get(webhook_id) == at:
            del self._expiry[webhook_id]


#: The store :func:`verify_webhook` uses unless given another (one per process).
DEFAULT_REPLAY_STORE = MemoryReplayStore()

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MAX_ID_CHARS = 256


def _secret_bytes(secret: str) -> bytes:
    if not secret:
        raise WebhookVerificationError(
            "the webhook secret is empty",
            hint="pass the project's webhook signing secret (whsec_...)",
        )
    register_secret(secret)
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError(
                "the webhook secret is not valid base64 after its whsec_ prefix",
                hint="copy the signing secret exactly as the dashboard shows it",
            ) from None
    return secret.encode()


def _sign(key: bytes, msg_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = 300.0,
    event_type: str | None = INCOMING_CALL,
    now: float | None = None,
    replay_store: ReplayStore | None = DEFAULT_REPLAY_STORE,
) -> WebhookEvent:
    """Verify a webhook's signature and timestamp and return its parsed event.

    Args:
        body: the raw request body, exactly as received.
        headers: the request headers (any mapping; names are matched case-insensitively).
        secret: the signing secret (``whsec_...``).
        tolerance: how many seconds the timestamp may differ from now (replay protection).
        event_type: the event type to accept (``realtime.call.incoming``); ``None`` accepts
            any verified event.
        now: the current Unix time (for tests).
        replay_store: where verified ids are remembered until they leave the tolerance
            window (:data:`DEFAULT_REPLAY_STORE`, in this process); ``None`` turns replay
            refusal off (only when something else refuses replays).

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is malformed or
            outside the tolerance, no signature matches, the body is not the expected
            JSON event, or the webhook was already accepted (a replay). The message never
            contains the secret. Whatever the input, nothing else is raised.
    """
    key = _secret_bytes(secret)
    lowered = {str(k).lower(): v for k, v in headers.items()}
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
               if not lowered.get(h)]
    if missing:
        raise WebhookVerificationError(
            f"the webhook request has no {', '.join(missing)} header",
            hint="only requests signed by OpenAI carry these headers; reject this one",
        )
    msg_id = str(lowered["webhook-id"])
    if len(msg_id) > _MAX_ID_CHARS:
        raise WebhookVerificationError(
            f"the webhook-id header is longer than {_MAX_ID_CHARS} characters"
        )
    stamp = str(lowered["webhook-timestamp"]).strip()
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError(
            f"the webhook-timestamp header {stamp[:32]!r} is not Unix seconds"
        )
    sent_at = int(stamp)
    current = time.time() if now is None else now
    if current - sent_at > tolerance:
        raise WebhookVerificationError(
            f"the webhook is stale: signed {current - sent_at:.0f}s ago (tolerance "
            f"{tolerance:g}s)",
            hint="it may be a replay; if clocks drift, check NTP on this host",
        )
    if sent_at - current > tolerance:
        raise WebhookVerificationError(
            f"the webhook timestamp is {sent_at - current:.0f}s in the future (tolerance "
            f"{tolerance:g}s)",
            hint="check this host's clock (NTP)",
        )
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    except UnicodeDecodeError:
        raise WebhookVerificationError("the webhook body is not UTF-8") from None
    expected = _sign(key, msg_id, stamp, text).encode()
    # Compared as bytes: a non-ASCII header value is a mismatch, not a TypeError.
    offered = [
        (part.split(",", 1)[1] if "," in part else part).encode("utf-8", "replace")
        for part in str(lowered["webhook-signature"]).split()[:16]
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookVerificationError(
            "the webhook signature does not match: the body was altered or the secret is "
            "wrong"
        )
    try:
        payload = decode_json(text)
    except EventParseError as exc:
        raise WebhookVerificationError(
            f"the signed webhook body is not usable JSON: {exc.message[:200]}"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookVerificationError("the signed webhook body is not an event object")
    payload.setdefault("id", msg_id)
    try:
        event = WebhookEvent.model_validate(payload)
    except ValidationError as exc:
        raise WebhookVerificationError(
            f"the signed webhook body is not a valid event: {exc.error_count()} problem(s) "
            f"({', '.join(str(e['loc'][0]) for e in exc.errors() if e['loc'])[:200]})"
        ) from None
    if event_type is not None and event.type != event_type:
        raise WebhookVerificationError(
            f"expected a {event_type} webhook, got {event.type[:100]}",
            hint="pass event_type=None to accept other event types",
        )
    if replay_store is not None and not replay_store.claim(msg_id, sent_at + tolerance):
        raise WebhookVerificationError(
            f"the webhook {msg_id[:64]!r} was already accepted: a replay",
            hint="each signed webhook is acted on once; a retried delivery carries the "
            "same id, so answer it 2xx without acting again",
        )
    return event


def sign_webhook(
    body: bytes | str,
    secret: str,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers that sign ``body`` (for the emulator and for tests)."""
    key = _secret_bytes(secret)
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    msg_id = msg_id or f"wh_{secrets.token_hex(12)}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{_sign(key, msg_id, stamp, text)}",
    }


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` signing secret."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    register_secret(secret)
    return secret
