"""Build-time checks of a graph's shape; each problem is one clear sentence.

Checked: edges that name unknown nodes (with a "did you mean"), a graph with no entry
edge, nodes that can never run (unreachable from ``START``), cycles with no way out
(nodes from which neither ``END`` nor a node without outgoing edges can be reached),
routers whose mapping points at unknown nodes, and nodes that write a field the state
does not have.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import GraphValidationError

if TYPE_CHECKING:
    from ._nodes import Branch, NodeSpec
    from ._state import StateSchema

__all__ = ["validate_graph", "START", "END"]

START = "__start__"
END = "__end__"


def _unknown(name: str, known: Iterable[str], where: str) -> GraphValidationError:
    candidates = [n for n in known if n not in (START, END)]
    close = difflib.get_close_matches(name, candidates, n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    have = ", ".join(repr(n) for n in candidates) or "none"
    return GraphValidationError(
        f"{where} names node {name!r}, which was never added{suggestion}",
        hint=f"add it with graph.add_node({name!r}, ...) (nodes: {have})",
    )


def successors(
    name: str,
    edges: Mapping[str, list[str]],
    joins: list[tuple[tuple[str, ...], str]],
    branches: Mapping[str, list[Branch]],
    nodes: Iterable[str],
) -> set[str] | None:
    """Every node ``name`` may lead to; ``None`` when a router may go anywhere."""
    out = set(edges.get(name, ()))
    for sources, target in joins:
        if name in sources:
            out.add(target)
    for branch in branches.get(name, ()):
        if branch.destinations is None:
            return None
        out.update(branch.destinations)
    return out


def validate_graph(
    schema: StateSchema[Any],
    nodes: Mapping[str, NodeSpec],
    edges: Mapping[str, list[str]],
    joins: list[tuple[tuple[str, ...], str]],
    branches: Mapping[str, list[Branch]],
) -> None:
    """Raise :class:`~masquerade.GraphValidationError` for the first problem found."""
    known = set(nodes) | {START, END}
    for source, targets in edges.items():
        if source not in known or source == END:
            raise (
                GraphValidationError(
                    "an edge leaves END", hint="END ends the run; nothing can follow it"
                )
                if source == END
                else _unknown(source, nodes, f"an edge to {targets[0]!r}")
            )
        for target in targets:
            if target not in known:
                raise _unknown(target, nodes, f"the edge from {source!r}")
            if target == START:
                raise GraphValidationError(
                    f"the edge from {source!r} goes to START",
                    hint="START only begins a run; point the edge at a node",
                )
    for sources, target in joins:
        for source in sources:
            if source not in nodes:
                raise _unknown(source, nodes, f"the joining edge to {target!r}")
        if target not in known or target == START:
            raise _unknown(target, nodes, f"the joining edge from {list(sources)!r}")
    for source, source_branches in branches.items():
        if source not in known or source == END:
            raise _unknown(source, nodes, "a conditional edge")
        for branch in source_branches:
            for target in branch.destinations or ():
                if target not in known or target == START:
                    raise _unknown(target, nodes, f"the router after {source!r}")

    node_names = list(nodes)
    if not edges.get(START) and not branches.get(START):
        first = f"graph.add_edge(START, {node_names[0]!r})" if node_names else "a node"
        raise GraphValidationError(
            "the graph has no entry: no edge leaves START",
            hint=f"add {first}",
        )

    # Reachability from START.
    def next_of(name: str) -> set[str]:
        found = successors(name, edges, joins, branches, node_names)
        return set(known) - {START} if found is None else found

    reachable: set[str] = set()
    frontier = [START]
    while frontier:
        for target in next_of(frontier.pop()):
            if target not in reachable:
                reachable.add(target)
                if target != END:
                    frontier.append(target)
    unreachable = [n for n in node_names if n not in reachable]
    if unreachable:
        listed = ", ".join(repr(n) for n in unreachable)
        raise GraphValidationError(
            f"node{'s' if len(unreachable) > 1 else ''} {listed} can never run: no path from "
            "START reaches it",
            hint="add an edge to it, or remove it",
        )

    # Every reachable node must be able to finish: reach END, or a node with no
    # outgoing edges (which ends its branch). Walk backwards from the exits.
    forward = {n: next_of(n) for n in node_names}
    exits = {n for n, out in forward.items() if not out} | {END}
    can_finish = set(exits)
    changed = True
    while changed:
        changed = False
        for name, out in forward.items():
            if name not in can_finish and out & can_finish:
                can_finish.add(name)
                changed = True
    stuck = [n for n in node_names if n not in can_finish]
    if stuck:
        listed = ", ".join(repr(n) for n in stuck)
        raise GraphValidationError(
            f"the cycle through {listed} has no way out: no path from it reaches END",
            hint="add a conditional edge that can leave the cycle (e.g. a router returning END)",
        )

    # Nodes that say which fields they write (AvatarNode's output_key) must write fields
    # the state has.
    for name, spec in nodes.items():
        for key in spec.output_keys:
            if key not in schema.fields and not schema.allow_extra:
                close = difflib.get_close_matches(key, schema.fields, n=1)
                suggestion = f"; did you mean {close[0]!r}?" if close else ""
                raise GraphValidationError(
                    f"node {name!r} writes {key!r}, which is not a field of "
                    f"{schema.name}{suggestion}",
                    hint=f"add `{key}: SessionResult | None = None` to {schema.name}, or set "
                    "the node's output_key",
                )
