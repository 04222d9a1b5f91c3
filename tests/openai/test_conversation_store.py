"""The conversation store's reading of server item payloads (no session needed)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from masquerade_openai._conversation import RealtimeConversation


class Part(Mapping[str, Any]):
    """A content part that is a mapping but not a dict."""

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def test_item_payloads_update_one_item() -> None:
    store = RealtimeConversation()
    assert store.upsert({"type": "message"}) is None  # no id: nothing to keep
    added = store.upsert({"id": "i1", "type": "message", "role": "user", "status": "in_progress",
                          "content": []})
    assert added is not None and (added.type, added.role, added.text) == ("message", "user", "")
    added.add_text("streamed")
    # A payload without text (or with empty text) keeps what the streams gathered.
    store.upsert({"id": "i1", "type": "message", "content": [{"type": "input_audio"}]})
    store.upsert({"id": "i1", "type": "message", "content": [{"type": "input_text", "text": ""}]})
    assert added.text == "streamed"
    done = store.upsert({"id": "i1", "type": "message", "status": "completed", "content": [
        {"type": "input_text", "text": "one "}, Part(type="input_text", text="two"),
        "not a part", {"type": "input_audio", "transcript": "spoken", "audio": "AAAA"},
    ]})
    assert done is added and store.items() == [added]
    assert (added.text, added.transcript, added.status) == ("one two", "spoken", "completed")
    # Audio is not kept in the raw payload; the other parts are.
    assert added.raw["content"][3] == {"type": "input_audio", "transcript": "spoken"}
    store.upsert({"id": "i1", "type": "message", "status": "completed"})
    assert len(store._completed) == 1  # completed once


def test_function_call_items_keep_their_call_fields() -> None:
    store = RealtimeConversation()
    call = store.upsert({"id": "f1", "type": "function_call", "status": "in_progress",
                         "name": "lookup", "call_id": "c1", "arguments": ""})
    assert call is not None and (call.name, call.call_id, call.arguments) == ("lookup", "c1", "")
    store.upsert({"id": "f1", "type": "function_call", "status": "completed",
                  "arguments": '{"x": 1}'})
    assert (call.name, call.call_id, call.arguments, call.status) == (
        "lookup", "c1", '{"x": 1}', "completed"
    )
    output = store.upsert({"id": "o1", "type": "function_call_output", "call_id": "c1",
                           "output": "{}"})
    assert output is not None and (output.call_id, output.output, output.status) == (
        "c1", "{}", "in_progress"
    )
    assert [i.id for i in store._completed] == ["f1"]
