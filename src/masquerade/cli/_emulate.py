"""Run a provider's loopback emulator, so sessions run with no API key and no network.

::

    $ masquerade emulate                     # list the installed emulators
    $ masquerade emulate runway --port 8765  # serve until Ctrl-C
    runway emulator listening on http://127.0.0.1:8765
    api key: emu_3f9c...                     # random unless --api-key is given

**Offering an emulator from your plugin.** Implement the hook
:func:`~masquerade.hookspecs.masquerade_register_emulators` in the plugin's entry-point
module and register an :class:`~masquerade.provider.Emulator`; its name (the provider's)
is what ``masquerade emulate NAME`` selects, and its ``serve`` is an ``async`` callable
that serves until it is cancelled::

    # myprovider/plugin.py (the module of the plugin's `masquerade` entry point)
    @hookimpl
    def masquerade_register_emulators(register):
        register(Emulator("myprovider", "myprovider.emulator:serve",
                          key_env="MYPROVIDER_API_KEY", base_url_env="MYPROVIDER_BASE_URL"))

    # myprovider/emulator.py
    async def serve(
        *,
        host: str,                         # interface to bind, e.g. "127.0.0.1"
        port: int,                         # 0 means "pick a free port"
        api_key: str,                      # the only key the emulator accepts
        ready: Callable[[str], None],      # call once with the base URL when listening
        script: str | None = None,         # optional: a conversation script file
    ) -> None:
        ...                                # serve until cancelled, then clean up

An entry point in group ``masquerade.emulators`` naming such a callable is still
accepted (it can be served, not run offline: it does not say where the provider reads
its key). The command passes only the keyword arguments the callable declares (``host``,
``port``, ``api_key`` and ``ready`` are always available; ``script`` is the path given
with ``--script``, or ``None``), runs it under ``anyio.run`` (asyncio), prints the base
URL and the key once ``ready`` is called, and stops it with Ctrl-C. The emulator must
accept only ``api_key`` (answer 401 otherwise) and should print nothing secret itself.
"""

from __future__ import annotations

import argparse
import inspect
import secrets
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import anyio

from ..errors import ConfigurationError, PluginError
from ..host import Host
from ..provider import Emulator

__all__ = ["ENTRYPOINT_GROUP", "add_arguments", "run", "available_emulators"]

#: The entry-point group older plugins register bare ``serve`` callables in.
ENTRYPOINT_GROUP = "masquerade.emulators"


def available_emulators(host: Host | None = None) -> dict[str, Emulator]:
    """Installed emulators by provider name: those plugins register through
    ``masquerade_register_emulators`` (on ``host``, or on a host loading every enabled
    plugin), then bare entry points of group ``masquerade.emulators`` for other names."""
    found = dict((host if host is not None else Host()).emulators)
    for ep in metadata.entry_points(group=ENTRYPOINT_GROUP):
        if ep.name not in found:
            found[ep.name] = Emulator(ep.name, ep.value)
    return found


def load_serve(emulator: Emulator) -> Callable[..., Any]:
    """The emulator's ``serve`` callable; a :class:`~masquerade.PluginError` if it fails
    to import."""
    try:
        return emulator.load()
    except Exception as exc:
        raise PluginError(f"the {emulator.name} emulator failed to load: {exc}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the emulator to run (omit to list them)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument(
        "--api-key", default=None, help="the only API key accepted (default: a random one)"
    )
    parser.add_argument(
        "--script", default=None, help="a conversation script file (format: the emulator's)"
    )


def run(args: argparse.Namespace) -> int:
    emulators = available_emulators()
    if args.name is None:
        if not emulators:
            print("no emulators installed (install a provider plugin, e.g. masquerade-runway)")
            return 1
        for name, emulator in sorted(emulators.items()):
            print(f"{name}\t{emulator.target}")
        return 0
    found = emulators.get(args.name)
    if found is None:
        have = ", ".join(sorted(emulators)) or "none"
        raise ConfigurationError(
            f"no emulator named {args.name!r} is installed (installed: {have})",
            hint="run `masquerade emulate` to list them; install the provider's plugin",
        )
    serve = load_serve(found)
    if not 0 <= args.port <= 65535:
        raise ConfigurationError(f"--port {args.port} is not a port number", hint="use 0-65535")
    api_key = args.api_key or f"emu_{secrets.token_hex(24)}"
    try:
        anyio.run(_serve, args.name, serve, args, api_key)
    except KeyboardInterrupt:
        print(f"\n{args.name} emulator stopped", file=sys.stderr)
    return 0


async def _serve(
    name: str, serve: Callable[..., Any], args: argparse.Namespace, api_key: str
) -> None:
    def ready(base_url: str) -> None:
        # The key is printed on purpose: it is a throwaway key for a loopback emulator,
        # and the user needs it to point a client at the emulator.
        print(f"{name} emulator listening on {base_url}", flush=True)
        print(f"api key: {api_key}", flush=True)

    offered: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "api_key": api_key,
        "ready": ready,
        "script": args.script,
    }
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(serve).parameters
    except (TypeError, ValueError):  # a builtin or C callable: pass the required four
        params = {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = offered
    elif params:
        kwargs = {k: v for k, v in offered.items() if k in params}
    else:
        kwargs = {k: offered[k] for k in ("host", "port", "api_key", "ready")}
    if args.script is not None and "script" not in kwargs:
        raise ConfigurationError(
            f"the {name} emulator does not take a --script", hint="leave out --script"
        )
    await serve(**kwargs)
