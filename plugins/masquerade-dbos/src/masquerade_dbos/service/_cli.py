"""``masquerade serve FILE[:GRAPH]``: the call service.

::

    $ masquerade serve flows.py:graph                      # SQLite + in-process worker
    $ MASQUERADE_API_KEY=... masquerade serve flows.py --host 0.0.0.0 \\
          --database-url postgresql://db/masquerade --no-worker   # API only; workers apart

Without a database URL (flag or ``MASQUERADE_DATABASE_URL``) it is the embedded default:
SQLite under ``./.masquerade/`` and a worker in this process; then, like ``masquerade
run``, a provider whose API key is not set runs against its emulator in-process.
Without ``MASQUERADE_API_KEY`` the service asks for no key, so it listens on loopback
only, whatever ``--host`` says, and says so. Request lines are not logged (a frontend's
client token may travel in a query string).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any

__all__ = ["add_arguments", "run", "HELP"]

HELP = "Serve the call service: an HTTP API to start runs and hand frontends their calls."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE[:GRAPH]", help="a Python file defining a Graph")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (8765; 0 picks a free one)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... (default: MASQUERADE_DATABASE_URL, else SQLite in ./.masquerade/)",
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the API only; `masquerade worker` processes run the graphs",
    )
    parser.add_argument("--capacity", type=int, default=10, help="runs at once in this process")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=64 * 1024,
        help="larger request bodies are refused with 413 (65536)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=60.0, help="longest credentials long-poll, seconds (60)"
    )
    parser.add_argument(
        "--static",
        default=None,
        metavar="DIR",
        help="also serve the files of DIR under /static/ (your frontend, same origin)",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    import anyio

    from masquerade import ConfigurationError
    from masquerade.cli._run import load_graph, offline_providers

    graph, label, module = load_graph(args.target)
    graph.validate()
    if args.max_body_bytes < 1 or args.max_wait < 0:
        raise ConfigurationError("--max-body-bytes must be positive and --max-wait >= 0")
    if args.static is not None and not os.path.isdir(args.static):
        raise ConfigurationError(
            f"--static {args.static} is not a directory", hint="pass your frontend's folder"
        )
    api_key = os.environ.get("MASQUERADE_API_KEY") or None
    host = args.host
    if api_key is None:
        if not is_loopback(host):
            print(
                f"MASQUERADE_API_KEY is not set: listening on 127.0.0.1 only, not {host} "
                "(set a key to serve other machines)",
                file=sys.stderr,
                flush=True,
            )
            host = "127.0.0.1"
        else:
            print(
                "MASQUERADE_API_KEY is not set: no key is asked, so the service listens on "
                "loopback only",
                file=sys.stderr,
                flush=True,
            )
    else:
        from masquerade import register_secret

        register_secret(api_key)
    worker = not args.no_worker

    async def main() -> None:
        import uvicorn

        from .._cli import _shown
        from .._durable import DurableGraph
        from ._app import ServiceConfig, create_app

        providers = set(graph.providers) if worker else set()
        scripts = getattr(module, "EMULATOR_SCRIPTS", None)
        async with offline_providers(providers, scripts=scripts) as emulated:
            for item in emulated:
                print(item.describe(), file=sys.stderr, flush=True)
            durable: DurableGraph[Any] = DurableGraph(
                graph, database_url=args.database_url, worker=worker, capacity=args.capacity
            )
            async with durable:
                config = ServiceConfig(
                    api_key=api_key,
                    webhook_secret=os.environ.get("OPENAI_WEBHOOK_SECRET") or None,
                    max_body_bytes=args.max_body_bytes,
                    max_wait=args.max_wait,
                )
                app = create_app(durable, config, static_dir=args.static)
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, args.port))
                sock.listen(2048)  # connections wait in the backlog until uvicorn accepts
                port = sock.getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                mode = (
                    "embedded worker" if worker else "API only (workers run the graphs)"
                )
                print(
                    f"serving {label} at http://{shown}:{port}/ ({mode}; runs in "
                    f"{_shown(durable.database_url)})",
                    flush=True,
                )
                server = uvicorn.Server(
                    uvicorn.Config(
                        app,
                        log_level="warning",
                        access_log=False,  # a client token may travel in a query string
                        lifespan="on",
                        timeout_keep_alive=30,  # frontends long-poll again and again
                    )
                )
                await server.serve(sockets=[sock])

    anyio.run(main, backend="asyncio")
    return 0
