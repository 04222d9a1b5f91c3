"""The ``masquerade`` command.

``masquerade plugins`` lists plugins, ``masquerade demo`` runs a session end to end.
Each command lives in its own small module under ``masquerade.cli``; this module only
assembles the parser and turns errors into clear messages and exit codes. Plugins add
commands through the ``masquerade_register_commands`` hook (``masquerade worker`` comes
from the ``dbos`` plugin).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .._logjson import logging_configured
from .._otel import setup_tracing_from_env
from .._redact import redact
from ..errors import MasqueradeError

__all__ = ["main", "COMMANDS", "plugin_commands"]

logger = logging.getLogger("masquerade.cli")

#: (command, module): each module has ``add_arguments(parser)`` and ``run(args) -> int``
#: and a one-line docstring used as the command's help.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("plugins", "masquerade.cli._plugins"),
    ("demo", "masquerade.cli._demo"),
    ("tools", "masquerade.cli._tools"),
    ("emulate", "masquerade.cli._emulate"),
    ("run", "masquerade.cli._run"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="masquerade",
        description="Avatar realtime sessions as nodes of an agent graph.",
    )
    _add_common_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        command = sub.add_parser(name, help=doc, description=doc)
        module.add_arguments(command)
        # Also accepted after the command (`masquerade demo --trace`); SUPPRESS keeps a
        # value given before the command when it is not repeated after it.
        _add_common_options(command, default=argparse.SUPPRESS)
        for nested in _subcommands(command):  # `masquerade tools schema --trace` too
            _add_common_options(nested, default=argparse.SUPPRESS)
        command.set_defaults(_run=module.run)
    for name, (add_arguments, run, doc) in plugin_commands().items():
        if name in sub.choices:
            logger.warning("a plugin's command %r was skipped: the name is taken", name)
            continue
        command = sub.add_parser(name, help=doc, description=doc)
        add_arguments(command)
        _add_common_options(command, default=argparse.SUPPRESS)
        for nested in _subcommands(command):
            _add_common_options(nested, default=argparse.SUPPRESS)
        command.set_defaults(_run=run)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in dict.fromkeys(action.choices.values()):
                found += [nested, *_subcommands(nested)]
    return found


def plugin_commands() -> dict[str, tuple[Callable[..., Any], Callable[..., Any], str]]:
    """Commands offered by plugins (``masquerade_register_commands``), by name."""
    from ..host import Host

    found: dict[str, tuple[Callable[..., Any], Callable[..., Any], str]] = {}
    caller = Host().pm.hook.masquerade_register_commands
    for impl in reversed(caller.get_hookimpls()):

        def register(
            name: str, add_arguments: Callable[..., Any], run: Callable[..., Any], help: str = ""
        ) -> None:
            found.setdefault(name, (add_arguments, run, help))

        try:
            impl.function(register)
        except Exception as exc:  # a broken plugin never breaks the command line
            logger.warning("plugin %s failed to register commands: %s", impl.plugin_name, exc)
    return found


def _add_common_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    options: tuple[tuple[str, dict[str, object]], ...] = (
        ("--log-level", {"help": "e.g. INFO or DEBUG (default: WARNING)"}),
        ("--log-json", {"action": "store_true", "help": "log one JSON object per line"}),
        (
            "--trace",
            {
                "action": "store_true",
                "help": "export traces over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT "
                "(needs the otel extra)",
            },
        ),
    )
    for flag, kwargs in options:
        if flag in parser._option_string_actions:  # the command defines it itself
            continue
        if default is argparse.SUPPRESS or kwargs.get("action") != "store_true":
            kwargs = {**kwargs, "default": default}
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]


def _library_dirs() -> tuple[str, ...]:
    """Where masquerade, its plugins, the standard library and installed packages live:
    frames from there are not the user's."""
    import sysconfig

    dirs = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in {"masquerade", "anyio", "pydantic"} or name.startswith(
            "masquerade_"
        ):
            path = getattr(module, "__file__", None)
            if path and "." not in name:
                dirs.add(str(Path(path).parent))
    return tuple(os.path.join(d, "") for d in dirs)


def _print_user_traceback(exc: MasqueradeError, *, full: bool) -> bool:
    """A node that raised: print its traceback, trimmed to the user's own frames (every
    frame with ``--log-level DEBUG``)."""
    from ..errors import NodeError

    cause = exc.__cause__
    if not isinstance(exc, NodeError) or cause is None or isinstance(cause, MasqueradeError):
        return False
    frames = traceback.extract_tb(cause.__traceback__)
    if not full:
        library = _library_dirs()
        frames = traceback.StackSummary.from_list(
            [f for f in frames if not os.path.abspath(f.filename).startswith(library)]
        )
    shown = "" if full else " (your code only; --log-level DEBUG shows every frame)"
    lines = [f"Traceback of node {exc.node!r}{shown}:\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(cause), cause)
    print(redact("".join(lines)).rstrip("\n"), file=sys.stderr)
    return True


def _silence_stdout() -> None:
    # Python flushes stdout at exit; a closed pipe would print one more error then.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from . import _console

    _console.LEDGER = _console.SessionLedger()  # this command's sessions only
    with ExitStack() as cleanup:
        try:
            # Secrets are masked in every record; websockets is kept at INFO or above (at
            # DEBUG it prints handshake headers, Authorization included). Undone on exit,
            # so an in-process call leaves logging as it found it.
            cleanup.enter_context(
                logging_configured(args.log_level, json_lines=bool(getattr(args, "log_json", 0)))
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            if getattr(args, "trace", False):
                # Runs first on exit: flushes the last spans while logging still works.
                cleanup.callback(setup_tracing_from_env())
            return int(args._run(args) or 0)
        except MasqueradeError as exc:
            shown = _print_user_traceback(
                exc, full=logging.getLogger().isEnabledFor(logging.DEBUG)
            )
            print(f"error: {exc.message}", file=sys.stderr)
            if shown:
                print("hint: the traceback above shows where your node raised", file=sys.stderr)
            elif exc.hint:
                print(f"hint: {exc.hint}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # The reader of our output went away (`masquerade demo | head -2`): the
            # sessions already ended through their cancel path; end quietly, like a
            # command killed by SIGPIPE (128 + 13).
            _silence_stdout()
            return 141
        except KeyboardInterrupt:
            from . import _console

            report = _console.LEDGER.report()
            print(
                f"interrupted; {len(report)} session(s) ended:"
                if report
                else "interrupted (no session was running)",
                file=sys.stderr,
            )
            for line in report:
                print(f"  {line}", file=sys.stderr)
            return 130
        except Exception as exc:  # pragma: no cover - last resort, still without secrets
            print(redact(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
            return 1

