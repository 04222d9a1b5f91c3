"""What :meth:`masquerade.Graph.stream` yields: node lifecycle and wrapped session events.

::

    async with graph.stream(state) as events:
        async for event in events:
            match event:
                case NodeStarted(node=node):
                    print("→", node)
                case NodeEvent(node=node, event=TranscriptDone(role=role, text=text)):
                    print(f"[{node}] {role}: {text}")
                case GraphEnded(state=final):
                    print(final)

Every event has a ``type`` (``node.started``, ``node.finished``, ``node.event``,
``graph.ended``) and :meth:`GraphEvent.as_json` gives the flat JSON form that
``masquerade run --json`` prints (a session event keeps its own ``type`` and gains
``node``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from .._redact import redact_mapping
from ..events import BaseEvent

__all__ = ["GraphEvent", "NodeStarted", "NodeFinished", "NodeEvent", "GraphEnded", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON-compatible data (models dumped, unknown objects as ``str``),
    with secret fields and credential-shaped strings masked."""
    return redact_mapping(to_jsonable_python(value, fallback=str))


class GraphEvent(BaseModel):
    """Base of the events a graph run streams."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    type: str

    def as_json(self) -> dict[str, Any]:
        """The event as one JSON object (secrets masked)."""
        return jsonable(self.model_dump(mode="python"))  # type: ignore[no-any-return]


class NodeStarted(GraphEvent):
    """Node ``node`` started in superstep ``step`` (1-based)."""

    type: Literal["node.started"] = "node.started"
    node: str
    step: int


class NodeFinished(GraphEvent):
    """Node ``node`` finished; ``update`` is the state update it returned (normalized to
    a dict of field values, before reducers)."""

    type: Literal["node.finished"] = "node.finished"
    node: str
    step: int
    duration_s: float
    update: dict[str, Any] = Field(default_factory=dict)


class NodeEvent(GraphEvent):
    """A session event from inside node ``node`` (an :class:`~masquerade.AvatarNode`).

    ``event`` is the normalized session event (``transcript.done``, ``tool.call``...);
    ``session_id`` tells sessions apart when a node runs more than one.
    """

    type: Literal["node.event"] = "node.event"
    node: str
    session_id: str | None = None
    event: BaseEvent

    def as_json(self) -> dict[str, Any]:
        event = self.event
        if event.type == "audio.delta":
            # Audio is summarized: a JSON stream of base64 frames helps nobody.
            data: dict[str, Any] = {
                "type": "audio.delta",
                "bytes": len(event.__dict__["data"]) * 3 // 4,
            }
        else:
            data = jsonable(event.model_dump(mode="python"))
        data["node"] = self.node
        if self.session_id is not None:
            data["session_id"] = self.session_id
        return data


class GraphEnded(GraphEvent):
    """The run finished; ``state`` is the final state. Always the last event."""

    type: Literal["graph.ended"] = "graph.ended"
    state: Any
    steps: int
    duration_s: float
