"""The emulated server's conversation: items in order, and the four item client events.

:class:`ServerConversation` keeps the items of one emulated session (as dicts, the way the
server shows them), announces additions with ``conversation.item.added`` / ``.done``, and
answers ``conversation.item.create``, ``.retrieve``, ``.delete`` and ``.truncate`` with
the service's events and error codes.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._audio import AUDIO_CHUNK, AUDIO_CHUNK_MS

if TYPE_CHECKING:
    from ._realtime import RealtimeServerSession

__all__ = ["ServerConversation", "public_item"]


def public_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as the server shows it (GA omits audio bytes from item events)."""
    out = {k: v for k, v in item.items() if k != "truncated_ms"}
    if "content" in out:
        out["content"] = [dict(part) for part in out["content"]]
    return out


class ServerConversation:
    """The items of one emulated session.

    Attributes:
        items: every item, in conversation order.
        audio_ms: milliseconds of assistant audio per item id (after truncation).
    """

    def __init__(self, session: RealtimeServerSession) -> None:
        self.session = session
        self.items: list[dict[str, Any]] = []
        self.audio_ms: dict[str, int] = {}
        session.record.items = self.items

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "conversation.item.create": self.on_create,
            "conversation.item.retrieve": self.on_retrieve,
            "conversation.item.delete": self.on_delete,
            "conversation.item.truncate": self.on_truncate,
        }

    @property
    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def find(self, item_id: str) -> dict[str, Any] | None:
        for item in self.items:
            if item["id"] == item_id:
                return item
        return None

    def add(self, item: dict[str, Any], previous: str | None) -> None:
        """Insert ``item`` after ``previous`` (``None``: at the end; ``"root"``: first)."""
        items = self.items
        if previous is None or not items:
            index = len(items) if previous is None else 0
        elif previous == "root":
            index = 0
        else:
            found = self.find(previous)
            index = items.index(found) + 1 if found is not None else len(items)
        items.insert(index, item)
        send = self.session.send
        send({"type": "conversation.item.added", "previous_item_id": previous,
              "item": public_item(item)})
        if item.get("status") != "in_progress":
            send({"type": "conversation.item.done", "previous_item_id": previous,
                  "item": public_item(item)})

    # ------------------------------------------------------------ client events
    async def on_create(self, event: dict[str, Any]) -> None:
        item = event["item"]
        eid = event.get("event_id")
        error = self.session.error
        if not isinstance(item, dict):
            raise TypeError("item must be an object")
        kind = item.get("type")
        if kind not in ("message", "function_call", "function_call_output"):
            error("invalid_value", f"Invalid value: {kind!r} for 'item.type'.",
                  param="item.type", client_event_id=eid)
            return
        item = dict(item)
        item.setdefault("id", self.session.new_id("item"))
        if self.find(item["id"]) is not None:
            error("duplicate_item_id", f"Item with id '{item['id']}' already exists.",
                  param="item.id", client_event_id=eid)
            return
        problem = self._invalid(item)
        if problem is not None:
            code, message, param = problem
            error(code, message, param=param, client_event_id=eid)
            return
        item["object"] = "realtime.item"
        item["status"] = "completed"
        previous = event.get("previous_item_id")
        if previous not in (None, "root") and self.find(previous) is None:
            error("previous_item_not_found", f"Previous item with id '{previous}' not found.",
                  param="previous_item_id", client_event_id=eid)
            return
        if previous is None and self.items:
            previous = self.items[-1]["id"]
        self.add(item, previous)

    def _invalid(self, item: dict[str, Any]) -> tuple[str, str, str] | None:
        """What is wrong with a client's item: ``(code, message, param)``, or ``None``."""
        kind = item.get("type")
        if kind == "message":
            role = item.get("role")
            allowed = {"user": {"input_text", "input_audio", "input_image"},
                       "system": {"input_text"},
                       "assistant": {"output_text", "output_audio"}}.get(str(role))
            if allowed is None:
                return "invalid_value", f"Invalid value: {role!r} for 'item.role'.", "item.role"
            for part in item.get("content") or ():
                if not isinstance(part, dict) or part.get("type") not in allowed:
                    shown = part.get("type") if isinstance(part, dict) else part
                    return ("invalid_value",
                            f"Invalid content type for a {role} message: {shown!r}.",
                            "item.content")
        elif kind == "function_call_output":
            call_id = item["call_id"]
            if not any(i.get("type") == "function_call" and i.get("call_id") == call_id
                       for i in self.items):
                return ("invalid_tool_call_id",
                        f"Tool call ID '{call_id}' not found in conversation.", "item.call_id")
            if not isinstance(item.get("output"), str):
                return "invalid_value", "'item.output' must be a string.", "item.output"
        elif kind == "function_call":
            item["call_id"], item["name"]
        return None

    async def on_retrieve(self, event: dict[str, Any]) -> None:
        item = self.find(event["item_id"])
        if item is None:
            self.session.error("item_not_found", f"Item with id '{event['item_id']}' not found.",
                               param="item_id", client_event_id=event.get("event_id"))
            return
        full = public_item(item)
        ms = self.audio_ms.get(item["id"])
        if ms:
            for part in full.get("content") or ():
                if part.get("type") == "output_audio":
                    chunks = math.ceil(ms / AUDIO_CHUNK_MS)
                    part["audio"] = base64.b64encode(AUDIO_CHUNK * chunks).decode()
        self.session.send({"type": "conversation.item.retrieved", "item": full})

    async def on_delete(self, event: dict[str, Any]) -> None:
        item = self.find(event["item_id"])
        if item is None:
            self.session.error("item_not_found", f"Item with id '{event['item_id']}' not found.",
                               param="item_id", client_event_id=event.get("event_id"))
            return
        self.items.remove(item)
        self.session.send({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def on_truncate(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        end = event["audio_end_ms"]
        eid = event.get("event_id")
        error = self.session.error
        item = self.find(item_id)
        if item is None:
            error("item_not_found", f"Item with id '{item_id}' not found.",
                  param="item_id", client_event_id=eid)
            return
        audio_ms = self.audio_ms.get(item_id, 0)
        if item.get("role") != "assistant" or audio_ms == 0:
            error("unsupported_content_type", "Only model output audio messages can be truncated.",
                  param="item_id", client_event_id=eid)
            return
        if not isinstance(end, int) or end < 0 or end > audio_ms:
            error("invalid_value",
                  f"Audio content of {audio_ms}ms is already shorter than {end}ms.",
                  param="audio_end_ms", client_event_id=eid)
            return
        self.audio_ms[item_id] = end
        for part in item.get("content") or ():
            if part.get("type") == "output_audio":
                part["transcript"] = ""  # the unheard words leave the context
        item["truncated_ms"] = end
        self.session.send({"type": "conversation.item.truncated", "item_id": item_id,
                           "content_index": event.get("content_index", 0), "audio_end_ms": end})
