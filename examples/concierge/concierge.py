"""The concierge: an avatar looks up an order and books a delivery slot through backend
tools, then a summary node turns the call into a support ticket.

    START ─▶ concierge (AvatarNode: one whole avatar session) ─▶ ticket ─▶ END

Run it (offline against the Runway emulator when RUNWAYML_API_SECRET is not set)::

    masquerade run examples/concierge/concierge.py --state '{"customer": "Grace Hopper"}'
    python examples/concierge/concierge.py          # the same
    masquerade demo                                 # the same graph, paced for people

The graph itself ships inside masquerade (``masquerade/cli/_concierge.py``), so that
``masquerade demo`` works from an installed package; read it there: the tools
(``lookup_order``, ``book_slot``), the state (``ConciergeState``), the summary node
(``write_ticket``) and ``build_graph``, which wires them together.
"""

from __future__ import annotations

import sys

from masquerade.cli._concierge import (
    SCRIPT,
    ConciergeState,
    Ticket,
    book_slot,
    build_graph,
    lookup_order,
    write_ticket,
)

__all__ = ["ConciergeState", "Ticket", "book_slot", "graph", "lookup_order", "write_ticket"]

#: The graph ``masquerade run`` finds in this file.
graph = build_graph("runway", avatar="human-resource")

#: What the emulated Runway avatar says and does offline: the demo conversation, then the
#: customer hangs up.
EMULATOR_SCRIPTS = {"runway": [*SCRIPT, {"hangup": True}]}

if __name__ == "__main__":
    from masquerade.cli import main

    sys.exit(main(["run", __file__, *sys.argv[1:]]))
