"""Hypothesis strategies for hostile outside input (shared by the property tests)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from masquerade.events import EVENT_TYPES

from .targets import OPENAI_TYPES

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = [
    "response", "item", "session", "error", "output", "content", "transcript",
    "type", "role", "text", "turn", "delta", "transcript", "call_id", "name", "arguments",
    "args", "tool", "status", "usage", "message", "code", "fatal", "state", "item_id",
    "response_id", "data", "payload", "outcome", "credentials", "audio_ms", "queued",
]
TYPE_NAMES = [*EVENT_TYPES, "transcription", "client_event", "END_CALL", "", "provider",
              *OPENAI_TYPES]


@st.composite
def deep(draw: st.DrawFn) -> str:
    """JSON text nested far deeper than any real frame (sometimes unbalanced)."""
    depth = draw(st.integers(min_value=30, max_value=60_000))
    opener = draw(st.sampled_from(["[", '{"a":', '{"type":"transcription","text":']))
    closer = {"[": "]", '{"a":': "}", '{"type":"transcription","text":': "}"}[opener]
    tail = closer * depth if draw(st.booleans()) else ""
    return opener * depth + "1" + tail


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, Any]:
    """An object with a known ``type`` and fields of any type."""
    fields = draw(st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6))
    fields["type"] = draw(st.sampled_from(TYPE_NAMES))
    return fields


def as_text(value: Any) -> str:
    return json.dumps(value)


frames = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    json_values.map(as_text),
    event_like().map(as_text),
    event_like(),
    deep(),
)
