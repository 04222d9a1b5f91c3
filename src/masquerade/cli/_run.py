"""Run a graph from a Python file and watch it live (offline against emulators without keys).

::

    $ masquerade run my_graph.py                       # the one Graph defined in the file
    $ masquerade run my_graph.py:graph --state '{"customer": "Ada"}'
    $ masquerade run my_graph.py:build_graph --state @state.json --json

``FILE:NAME`` names a module-level :class:`~masquerade.Graph`, or a function that takes
no arguments and returns one. Without ``NAME`` the file must define exactly one graph.
``--state`` is the initial state as JSON (``@path`` reads a file); without it the state
model's defaults are used. A file that implements masquerade hooks (say
``masquerade_register_tools``) is registered as a plugin of the run's host.

**Offline.** For each provider the graph's AvatarNodes use whose API key is not set
(``RUNWAYML_API_SECRET``, ``OPENAI_API_KEY``...), the emulator its plugin offers
(:func:`~masquerade.hookspecs.masquerade_register_emulators`) is started in-process and
the provider pointed at it through its environment variables; one line says so.
``--offline`` does this even when a key is set; ``--online`` never does. The emulators
play ``--script FILE``, else the file's ``EMULATOR_SCRIPTS`` (a dict: provider name ->
script in that emulator's format), else the emulator's default: a complete call
(greeting, a call of the first tool, goodbye, hang-up) that takes seconds.

Exit status: 0 when the graph finished and none of the sessions in its final state
failed; 1 otherwise (the error, with what to do about it, is printed on stderr).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

from .._redact import register_secret
from ..errors import ConfigurationError, MasqueradeError, NodeError, PluginError
from ..graph import Graph, GraphEnded
from ..host import Host
from ._console import ConsoleView, JsonView, session_results
from ._emulate import available_emulators, load_serve

__all__ = [
    "Emulated",
    "add_arguments",
    "implements_hooks",
    "load_graph",
    "machine_readable_stdout",
    "make_view",
    "offline_providers",
    "parse_state",
    "run",
    "run_graph",
]


logger = logging.getLogger("masquerade.cli")


@dataclass(frozen=True)
class Emulated:
    """One provider running against its in-process emulator."""

    provider: str
    base_url: str
    reason: str

    def describe(self) -> str:
        return f"{self.provider}: {self.reason}: running its emulator in-process at {self.base_url}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE[:GRAPH]", help="a Python file defining a Graph")
    parser.add_argument(
        "--state", default=None, help="the initial state as JSON, or @FILE to read it from a file"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per event (what the graph prints goes to stderr)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--offline", action="store_true", help="use the providers' emulators even with a key"
    )
    mode.add_argument("--online", action="store_true", help="never start an emulator")
    parser.add_argument(
        "--script", default=None, help="a conversation script file for the emulators to play"
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop a run after this many steps (default: the number of nodes plus 100)",
    )


# ---------------------------------------------------------------------- loading a graph
def _split_target(target: str) -> tuple[Path, str | None]:
    path, sep, name = target.rpartition(":")
    if sep and name.isidentifier() and path and not Path(target).exists():
        return Path(path), name
    return Path(target), None


@contextmanager
def _importable_from(directory: Path) -> Iterator[None]:
    # Like `python FILE`: the file's own directory comes first on sys.path, so the
    # graph file can import its siblings.
    entry = str(directory)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:
            pass


def load_graph(target: str) -> tuple[Graph[Any], str, ModuleType]:
    """Import ``FILE[:NAME]``; return its graph, a label (``file.py:name``) and the module."""
    path, name = _split_target(target)
    if not path.is_file():
        raise ConfigurationError(
            f"{path} does not exist" if not path.exists() else f"{path} is not a file",
            hint="pass the path of a Python file that defines a masquerade Graph",
        )
    module_name = f"_masquerade_run_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{path} cannot be imported", hint="pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _importable_from(path.resolve().parent):
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        detail = exc.message if isinstance(exc, MasqueradeError) else str(exc)
        raise ConfigurationError(
            f"importing {path} failed: {type(exc).__name__}: {detail}",
            hint=exc.hint
            if isinstance(exc, MasqueradeError) and exc.hint
            else f"run `python {path}` to see the full traceback",
        ) from exc

    if name is not None:
        if not hasattr(module, name):
            graphs = _graphs_in(module)
            have = ", ".join(graphs) or "none"
            raise ConfigurationError(
                f"{path} has no {name!r} (graphs defined there: {have})",
                hint=f"pass {path}:NAME with the name of a module-level Graph",
            )
        found = getattr(module, name)
        if not isinstance(found, Graph) and callable(found):
            try:
                found = found()
            except TypeError as exc:
                raise ConfigurationError(
                    f"{path}:{name} is a function that could not be called without "
                    f"arguments: {exc}",
                    hint="name a Graph, or a function without arguments that returns one",
                ) from exc
        if not isinstance(found, Graph):
            raise ConfigurationError(
                f"{path}:{name} is a {type(found).__name__}, not a masquerade Graph",
                hint="name a Graph, or a function without arguments that returns one",
            )
        return found, f"{path.name}:{name}", module

    graphs = _graphs_in(module)
    if not graphs:
        raise ConfigurationError(
            f"{path} defines no masquerade Graph at module level",
            hint=f"define `graph = Graph(State)` in it, or pass {path}:NAME to name a function "
            "that returns one",
        )
    if len(graphs) > 1:
        raise ConfigurationError(
            f"{path} defines several graphs ({', '.join(graphs)})",
            hint=f"pick one: masquerade run {path}:{next(iter(graphs))}",
        )
    ((found_name, found_graph),) = graphs.items()
    return found_graph, f"{path.name}:{found_name}", module


def _graphs_in(module: Any) -> dict[str, Graph[Any]]:
    return {
        key: value
        for key, value in vars(module).items()
        if isinstance(value, Graph) and not key.startswith("_")
    }


def parse_state(raw: str | None) -> dict[str, Any] | None:
    """``--state``: JSON text, or ``@path`` to a JSON file."""
    if raw is None:
        return None
    source = "--state"
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw = path.read_text()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the state file {path}: {exc.strerror}",
                hint="pass --state @PATH with an existing JSON file",
            ) from None
        source = str(path)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"{source} is not valid JSON: {exc}",
            hint="""pass a JSON object, e.g. --state '{"customer": "Ada"}'""",
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source} must be a JSON object, got {type(data).__name__}",
            hint="""pass a JSON object, e.g. --state '{"customer": "Ada"}'""",
        )
    return data


# ---------------------------------------------------------------------- offline mode
@asynccontextmanager
async def offline_providers(
    providers: set[str],
    *,
    force: bool = False,
    never: bool = False,
    script: str | None = None,
    scripts: Mapping[str, Any] | None = None,
    environ: MutableMapping[str, str] | None = None,
    host: Host | None = None,
) -> AsyncIterator[list[Emulated]]:
    """Start the emulator of every provider in ``providers`` that has no API key set (or
    of all of them with ``force``), point the provider at it through its environment
    variables for the duration of the block, and yield what was emulated.

    Emulators are those the plugins of ``host`` offer (when it is ``None``, a host
    loading every enabled plugin; see :func:`.available_emulators`). A
    provider with no emulator runs as it is (a provider of the graph file, say); with
    ``force``, one that no plugin registers at all is an error. ``script`` (a file) is
    played by every emulator; otherwise ``scripts[provider]`` (script data in that
    emulator's format), else the emulator's own ``offline_script``.
    """
    env = os.environ if environ is None else environ
    emulated: list[Emulated] = []
    if never:
        yield emulated
        return
    saved: dict[str, str | None] = {}
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            try:
                if providers and host is None:
                    host = Host()
                emulators = available_emulators(host) if host is not None else {}
                for provider in sorted(providers):
                    known = emulators.get(provider)
                    key_env = known.key_env if known is not None else None
                    url_env = known.base_url_env if known is not None else None
                    # Without both variables it can be served, but not run offline.
                    if known is None or not key_env or not url_env:
                        if force and host is not None and provider not in host.providers:
                            raise ConfigurationError(
                                f"--offline needs an emulator for {provider!r}, and no "
                                "installed plugin offers one",
                                hint=f"install the {provider} provider's plugin "
                                "(`masquerade emulate` lists the emulators installed)",
                            )
                        continue  # the provider will say that its key is missing
                    if env.get(key_env) and not force:
                        continue
                    serve = load_serve(known)
                    reason = "--offline" if force else f"{key_env} is not set"
                    api_key = f"emu_{secrets.token_hex(24)}"
                    register_secret(api_key)
                    path: str | None = script
                    data = (scripts or {}).get(provider, known.offline_script)
                    if path is None and data is not None:
                        path = _script_file(stack, provider, data)
                    base_url = await _start_emulator(tg, provider, serve, api_key, path)
                    for key, value in ((key_env, api_key), (url_env, base_url)):
                        saved.setdefault(key, env.get(key))
                        env[key] = value
                    emulated.append(Emulated(provider, base_url, reason))
                yield emulated
            except Exception as exc:
                # Re-raised outside the task group, which would wrap it in a group.
                failure = exc
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        for key, previous in saved.items():
            if previous is None:
                env.pop(key, None)
            else:
                env[key] = previous


def _script_file(stack: AsyncExitStack, provider: str, script: Any) -> str:
    # Emulator entry points take a script *file*: write the data to a temporary one that
    # lives as long as the emulators.
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="masquerade-"))
    path = Path(directory) / f"{provider}-script.json"
    path.write_text(json.dumps(script))
    return str(path)


async def _start_emulator(
    tg: Any, provider: str, serve: Callable[..., Any], api_key: str, script: str | None
) -> str:
    import inspect

    listening = anyio.Event()
    urls: list[str] = []

    def ready(base_url: str) -> None:
        urls.append(base_url)
        listening.set()

    kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "api_key": api_key, "ready": ready}
    if script is not None:
        try:
            accepts = "script" in inspect.signature(serve).parameters
        except (TypeError, ValueError):
            accepts = False
        if not accepts:
            raise ConfigurationError(
                f"the {provider} emulator does not take a --script", hint="leave out --script"
            )
        kwargs["script"] = script
    errors: list[Exception] = []

    async def guarded() -> None:
        try:
            await serve(**kwargs)
        except Exception as exc:  # reported by the waiter below, or logged mid-run
            errors.append(exc)
            listening.set()
            logger.warning("the %s emulator stopped: %s", provider, exc)

    tg.start_soon(guarded, name=f"{provider} emulator")
    try:
        with anyio.fail_after(20):
            await listening.wait()
    except TimeoutError:
        raise PluginError(
            f"the {provider} emulator did not start listening within 20s",
            hint=f"try `masquerade emulate {provider}` to see why",
        ) from None
    if errors:
        raise PluginError(
            f"the {provider} emulator failed to start: {type(errors[0]).__name__}: {errors[0]}",
            hint=f"try `masquerade emulate {provider}` to see why, or pass --online",
        ) from errors[0]
    return urls[0]


# ---------------------------------------------------------------------- running
async def run_graph(
    graph: Graph[Any],
    state: Any,
    *,
    view: ConsoleView | JsonView,
    max_steps: int | None = None,
    host: Any = None,
) -> Any:
    """Run ``graph`` showing every event on ``view``; return the final state.

    Errors are shown on the view (a ``graph.error`` object in JSON) and re-raised.
    """
    from . import _console

    host = Host() if host is None else host
    host.register(_console.LEDGER, "cli-ledger")  # what an interrupted command reports
    final: Any = None
    failure: MasqueradeError | None = None
    closed: BrokenPipeError | None = None
    if isinstance(view, ConsoleView):
        for name, spec in graph.nodes.items():
            template = getattr(spec.fn, "template", None)  # an AvatarNode's request
            if template is not None:
                view.deadlines[name] = template.max_duration
    async with anyio.create_task_group() as tg:
        if isinstance(view, ConsoleView):
            tg.start_soon(view.animate)
        try:
            async with host, graph.stream(state, host=host, max_steps=max_steps) as events:
                async for event in events:
                    view.graph_event(event)
                    if isinstance(event, GraphEnded):
                        final = event.state
        except MasqueradeError as exc:
            # Re-raised below, outside the task group (which would wrap it in a group).
            failure = exc
        except BrokenPipeError as exc:
            # Whoever read our output went away (`| head`): leaving the stream above ended
            # every session through its cancel path; main() then exits quietly.
            closed = exc
        finally:
            tg.cancel_scope.cancel()
    if closed is not None:
        raise closed
    if failure is not None:
        if isinstance(view, ConsoleView):
            cause = failure.__cause__ if isinstance(failure, NodeError) else None
            view.node_failed(
                failure.node if isinstance(failure, NodeError) else None,
                cause.message
                if isinstance(cause, MasqueradeError)
                else f"{type(cause).__name__}: {cause}"
                if cause is not None
                else failure.message,
            )
        if isinstance(view, JsonView):
            view.emit(
                {
                    "type": "graph.error",
                    "error": type(failure).__name__,
                    "message": failure.message,
                    "hint": failure.hint,
                    "node": failure.node if isinstance(failure, NodeError) else None,
                }
            )
        raise failure
    return final


def implements_hooks(module: ModuleType) -> bool:
    """Whether a graph file implements masquerade hooks (then it is registered as a
    plugin of the run's host, e.g. to offer tools or a provider of its own)."""
    return any(
        name.startswith("masquerade_") and hasattr(value, "masquerade_impl")
        for name, value in vars(module).items()
    )


def run(args: argparse.Namespace) -> int:
    graph, label, module = load_graph(args.target)
    state = parse_state(args.state)
    graph.validate()
    # Check the initial state before starting emulators: a typo fails in milliseconds.
    graph.schema.coerce(state)
    view = make_view(json_output=args.json)
    with machine_readable_stdout(args.json):
        return anyio.run(_run, graph, label, module, state, args, view)


def make_view(*, json_output: bool) -> ConsoleView | JsonView:
    """The live view for people, or JSON lines for machines (on the real stdout)."""
    return JsonView(sys.stdout) if json_output else ConsoleView()


@contextmanager
def machine_readable_stdout(active: bool) -> Iterator[None]:
    """With ``--json``, stdout carries JSON lines only: whatever the graph's own code
    prints goes to stderr meanwhile (the JSON view keeps the real stdout)."""
    if not active:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield


async def _run(
    graph: Graph[Any],
    label: str,
    module: ModuleType,
    state: Any,
    args: argparse.Namespace,
    view: ConsoleView | JsonView,
) -> int:
    plugins = [module] if implements_hooks(module) else []
    async with offline_providers(
        graph.providers,
        force=args.offline,
        never=args.online,
        script=args.script,
        scripts=getattr(module, "EMULATOR_SCRIPTS", None),
        host=None if args.online else Host(plugins=plugins),
    ) as emulated:
        for item in emulated:
            if isinstance(view, JsonView):
                view.emit(
                    {
                        "type": "emulator",
                        "provider": item.provider,
                        "base_url": item.base_url,
                        "reason": item.reason,
                    }
                )
            else:
                view.line(item.describe())
        if isinstance(view, ConsoleView):
            view.line(f"running {label} ({', '.join(graph.nodes)})")
        # Created after the emulators started: providers read their key and base URL
        # from the environment the emulators set.
        host = Host(plugins=plugins)
        final = await run_graph(graph, state, view=view, max_steps=args.max_steps, host=host)
    if final is None:
        return 1
    # The graph finished; a session that failed on the way still fails the command.
    failed = {k: r for k, r in session_results(final).items() if r.outcome == "failed"}
    for key, result in failed.items():
        why = result.failure or result.error
        print(f"error: the call in {key!r} failed: {why}", file=sys.stderr)
    return 1 if failed else 0
