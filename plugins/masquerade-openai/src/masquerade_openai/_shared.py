"""Small helpers every part of an OpenAI Realtime session uses: ids, hints."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

__all__ = [
    "EMPTY", "FATAL_CODES", "Flag", "event_id", "item_id", "hint_for", "noop_emit", "per_object",
]

T = TypeVar("T")

#: The value of an id set that is still empty: one object shared by every session. A
#: part replaces it with a set of its own on the first ``add`` (an empty set costs
#: 216 bytes per session, and most sessions never add to most sets).
EMPTY: frozenset[str] = frozenset()

#: Error codes after which the session cannot go on.
FATAL_CODES = frozenset(
    {
        "beta_api_shape_disabled",
        "invalid_api_key",
        "insufficient_quota",
        "model_not_found",
        "session_terminated",
    }
)


def event_id() -> str:
    """A fresh client event id (``evt_msq_...``)."""
    return f"evt_msq_{_PREFIX}{next(_COUNTER):010x}"


def item_id() -> str:
    """A fresh id for an item the client creates (``item_msq_...``)."""
    return f"item_msq_{_PREFIX[:8]}{next(_COUNTER):010x}"


# Ids are a random per-process prefix and a counter: unique without a random draw each.
_PREFIX = uuid.uuid4().hex[:10]
_COUNTER = itertools.count(1)


#: What to do when an ephemeral key may have been refused for its age.
EPHEMERAL_KEY_HINT = (
    "an ephemeral key (ek_...) is refused once it expires (10 s to 2 h after it was "
    "minted, see its expires_at): mint a fresh one and connect again"
)


def hint_for(code: Any, param: Any) -> str | None:
    """What a user can do about a Realtime error code, if anything is known."""
    if code == "beta_api_shape_disabled":
        return "the Realtime beta protocol is switched off; masquerade speaks GA only"
    if code in ("unknown_parameter", "invalid_value", "missing_required_parameter"):
        where = f" ({param})" if param else ""
        return f"fix the session options{where}; see masquerade_openai.RealtimeOptions"
    if code == "invalid_api_key":
        return f"check OPENAI_API_KEY (or the api_key you passed); {EPHEMERAL_KEY_HINT}"
    return None


def noop_emit(event: Any) -> Any:
    """The event sink of a part of the session before it is connected."""
    return None


class Flag:
    """An event flag that builds an :class:`anyio.Event` only when a task has to wait for
    it (most are set before anyone waits: thousands of idle sessions hold no event)."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        await event.wait()


def per_object(
    cache: dict[Any, tuple[Any, T]],
    key: Hashable,
    owner: object,
    make: Callable[[], T],
    *,
    limit: int = 256,
) -> T:
    """``make()``, made once per ``owner``: an object the provider shares between
    sessions (options, a session payload), which is never changed. ``key`` holds
    ``id(owner)``, so the stored owner is compared too (a later object may reuse the
    id); the cache is emptied past ``limit`` entries (owners that all differ)."""
    found = cache.get(key)
    if found is not None and found[0] is owner:
        return found[1]
    value = make()
    if len(cache) >= limit:
        cache.clear()
    cache[key] = (owner, value)
    return value
