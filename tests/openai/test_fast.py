"""The hot-path event builders: same events as validation, checks unrolled per class."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from masquerade.errors import EventParseError
from masquerade.events import (
    MAX_JSON_DEPTH,
    AudioDelta,
    ProviderEvent,
    ResponseDone,
    TranscriptDelta,
)
from masquerade_openai._fast import builder, positional_builder, shallow_text


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_built_event_equals_the_validated_one() -> None:
    make = builder(TranscriptDelta)
    fields = {"type": "transcript.delta", "role": "assistant", "text": "hi", "turn": "item_1"}
    event = make(dict(fields))
    assert event == TranscriptDelta.model_validate(fields)
    assert event.model_dump() == fields
    assert event.model_fields_set == set(fields)
    with pytest.raises(ValidationError):  # frozen like any event
        event.text = "changed"  # type: ignore[misc]


def test_a_built_event_can_be_copied_with_changes() -> None:
    make = builder(TranscriptDelta)
    fields = {"type": "transcript.delta", "role": "assistant", "text": "hi", "turn": "item_1"}
    first, second = make(dict(fields)), make(dict(fields))
    copied = first.model_copy(update={"text": "changed"})
    assert copied.text == "changed" and first.text == "hi"
    assert first.model_fields_set == second.model_fields_set == set(fields)
    delta = positional_builder(TranscriptDelta, "text", "turn", type="transcript.delta",
                               role="assistant")("hi", "item_1")
    assert delta.model_copy(update={"turn": "item_2"}).turn == "item_2"


def test_missing_fields_get_their_defaults() -> None:
    event = builder(ResponseDone)({"type": "response.done"})
    assert event == ResponseDone()


def test_a_value_of_another_type_goes_through_validation() -> None:
    make = builder(TranscriptDelta)
    with pytest.raises(ValidationError):
        make({"type": "transcript.delta", "role": "assistant", "text": 5, "turn": None})
    with pytest.raises(ValidationError):
        make({"type": "transcript.delta", "role": "assistant", "text": "x", "turn": 1.5})
    event = make({"type": "transcript.delta", "role": "assistant", "text": "x", "turn": 7})
    assert event.turn == 7


def test_nesting_is_bounded_unless_the_caller_checked_the_text() -> None:
    make = builder(ProviderEvent)
    deep = nested(MAX_JSON_DEPTH + 1)
    with pytest.raises(EventParseError):
        make({"type": "provider", "name": "x", "payload": deep})
    assert make({"type": "provider", "name": "x", "payload": nested(MAX_JSON_DEPTH)}).name == "x"
    assert make({"type": "provider", "name": "x", "payload": deep}, True).payload is deep


def test_shallow_text_counts_opening_brackets() -> None:
    assert shallow_text('{"a": [1, {"b": 2}]}')
    assert shallow_text(b"[]")
    assert not shallow_text("[" * (MAX_JSON_DEPTH + 1))
    assert not shallow_text('{"text": "' + "{" * MAX_JSON_DEPTH + '"}')  # stricter, never laxer
    assert not shallow_text(None)


def test_positional_builder_checks_the_values_it_is_given() -> None:
    make = positional_builder(TranscriptDelta, "text", "turn", type="transcript.delta",
                              role="assistant")
    event = make("hi", "item_1")
    assert event == TranscriptDelta(role="assistant", text="hi", turn="item_1")
    assert list(event.__dict__) == list(TranscriptDelta.model_fields)
    assert make("hi", 7).turn == 7
    with pytest.raises(ValidationError):
        make(["not", "text"], None)
    audio = positional_builder(AudioDelta, "data", "response_id", "item_id", type="audio.delta")
    assert audio("AAAA", None, "item_2") == AudioDelta(data="AAAA", item_id="item_2")
    with pytest.raises(TypeError):  # every field once
        positional_builder(TranscriptDelta, "text", type="transcript.delta", role="user")
    with pytest.raises(TypeError):  # an object field is not checked by its type alone
        positional_builder(ProviderEvent, "name", "payload", type="provider")
