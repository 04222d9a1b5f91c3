"""``masquerade worker FILE[:GRAPH]``: run durable graph runs from the queue.

::

    $ masquerade worker flows.py:graph --database-url postgresql://db/masquerade \\
          --capacity 20 --provider-limit runway=5 --executor-id worker-1

The worker runs at most ``--capacity`` runs at once, sends heartbeats, recovers the runs
of workers that stopped sending theirs, and on SIGTERM (or Ctrl-C) stops taking runs and
drains: it waits up to ``--drain-timeout`` seconds for its running runs, then hands the
rest back to the live workers (a live call is re-attached, never placed twice).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from masquerade import ConfigurationError

__all__ = ["add_arguments", "run"]

HELP = "Run durable graph runs from a queue (DBOS; PostgreSQL to scale out)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE[:GRAPH]", help="a Python file defining a Graph")
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... shared by all workers (default: MASQUERADE_DATABASE_URL, "
        "else SQLite in ./.masquerade/)",
    )
    parser.add_argument("--capacity", type=int, default=10, help="runs at once (10)")
    parser.add_argument(
        "--executor-id",
        default=None,
        help="this worker's id; restarted with the same id it resumes its own runs at once",
    )
    parser.add_argument(
        "--provider-limit",
        action="append",
        default=[],
        metavar="PROVIDER=N",
        help="at most N concurrent runs of the graph across all workers (repeatable)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=15.0,
        help="seconds of silence after which a worker's runs are recovered (15)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds to let running runs finish on SIGTERM before handing them back (60)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="seconds between queue polls (0.5)"
    )


def _limits(values: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for value in values:
        name, _, number = value.partition("=")
        try:
            limits[name.strip()] = int(number)
        except ValueError:
            raise ConfigurationError(
                f"--provider-limit {value!r} is not PROVIDER=N",
                hint="e.g. --provider-limit runway=5",
            ) from None
    return limits


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def run(args: argparse.Namespace) -> int:
    import anyio

    from masquerade.cli._run import load_graph

    from ._durable import DurableGraph

    graph, label, _module = load_graph(args.target)
    limits = _limits(args.provider_limit)

    async def main() -> None:
        durable: DurableGraph[Any] = DurableGraph(
            graph,
            database_url=args.database_url,
            capacity=args.capacity,
            executor_id=args.executor_id,
            provider_limits=limits,
            heartbeat_timeout=args.heartbeat_timeout,
            polling_interval=args.poll_interval,
        )
        async with durable:
            print(
                f"worker {durable.executor_id} runs {label} from {_shown(durable.database_url)} "
                f"(capacity {durable.capacity})",
                flush=True,
            )
            await durable.serve(drain_timeout=args.drain_timeout)
        print(f"worker {durable.executor_id} stopped", file=sys.stderr, flush=True)

    anyio.run(main, backend="asyncio")
    return 0
