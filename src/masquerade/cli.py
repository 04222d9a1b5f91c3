"""The ``masquerade`` command.

``masquerade plugins`` lists plugins, ``masquerade demo`` runs a session end to end.
Each command lives in its own small module under ``masquerade._cli``; this module only
assembles the parser and turns errors into clear messages and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ._redact import redact
from .errors import MasqueradeError

__all__ = ["main", "COMMANDS"]

#: (command, module): each module has ``add_arguments(parser)`` and ``run(args) -> int``
#: and a one-line docstring used as the command's help.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("plugins", "masquerade._cli.plugins"),
    ("demo", "masquerade._cli.demo"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="masquerade",
        description="Avatar realtime sessions as nodes of an agent graph.",
    )
    parser.add_argument("--log-level", default=None, help="e.g. INFO or DEBUG (default: WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        command = sub.add_parser(name, help=doc, description=doc)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=(args.log_level or "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # websockets logs handshake headers (Authorization) at DEBUG: never let that through.
    logging.getLogger("websockets").setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        return int(args._run(args) or 0)
    except MasqueradeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # pragma: no cover - last resort, still without secrets
        print(redact(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
