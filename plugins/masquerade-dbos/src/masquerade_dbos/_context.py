"""Which node attempt of which durable run is running (no DBOS import: plugins load it)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["NodeExecution", "current_execution", "execution_var"]


@dataclass(frozen=True)
class NodeExecution:
    """One attempt of one node in one durable run (what a session checkpoint is keyed by)."""

    workflow_id: str
    node: str
    step: int
    attempt: int

    @property
    def session_key(self) -> str:
        """The workflow-event key of the provider session this attempt created."""
        return f"masquerade.session/{self.node}/{self.step}/{self.attempt}"


execution_var: ContextVar[NodeExecution | None] = ContextVar("masquerade_dbos_node", default=None)


def current_execution() -> NodeExecution | None:
    """The node attempt running in this task, inside a durable run; else ``None``."""
    return execution_var.get()
