"""Inspect tools: print the schema a provider receives for a Python tool.

::

    masquerade tools schema shop.tools:book_slot --dialect runway
    masquerade tools schema ./shop/tools.py:book_slot            # a file path works too
    masquerade tools schema shop.tools                           # every tool in the module
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError, MasqueradeError
from ..host import Host
from ..tools import Tool, as_tool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tools_command", metavar="SUBCOMMAND", required=True)
    schema = sub.add_parser(
        "schema",
        help="print a tool's schema as JSON",
        description="Print the schema a provider receives for a tool (or for every tool of "
        "a module), as JSON.",
    )
    schema.add_argument(
        "target",
        metavar="MODULE[:FUNCTION]",
        help="a module (dotted name or .py file) and optionally the tool or function in it",
    )
    schema.add_argument(
        "--dialect",
        default="openai",
        help="the provider's tool format: openai (default) or runway; plugins may add more",
    )
    schema.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2)")


def run(args: argparse.Namespace) -> int:
    tools = load_tools(args.target)
    host = Host()
    schemas = [host.tool_schema(t, args.dialect) for t in tools]
    whole_module = _split(args.target)[1] is None
    output: Any = schemas if whole_module else schemas[0]
    print(json.dumps(output, indent=args.indent or None, ensure_ascii=False))
    return 0


def _split(target: str) -> tuple[str, str | None]:
    # "C:\\path\\file.py" has a drive colon; the attribute colon is the last one after it.
    module, sep, attr = target.rpartition(":")
    if not sep or not attr or ("/" in attr or "\\" in attr) or len(module) == 1:
        return target, None
    return module, attr


def _is_path(module: str) -> bool:
    return module.endswith(".py") or os.sep in module or "/" in module


def _import(module: str) -> ModuleType:
    try:
        if _is_path(module):
            return _import_file(module)
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`: the current directory
        return importlib.import_module(module)
    except MasqueradeError:
        raise  # a tool that cannot be defined says so itself
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ConfigurationError(
                f"no module named {module!r}",
                hint="check the spelling, run from the directory that contains it, or give "
                "the path of its .py file",
            ) from None
        raise ConfigurationError(
            f"importing {module} failed: {exc}",
            hint=f"install the missing module {exc.name!r} or fix the import",
        ) from None
    except Exception as exc:
        raise ConfigurationError(
            f"importing {module} failed: {type(exc).__name__}: {exc}",
            hint=f"run `python {module}` to see the traceback"
            if _is_path(module)
            else f"run `python -c 'import {module}'` to see the traceback",
        ) from None


def _import_file(module: str) -> ModuleType:
    path = Path(module).expanduser().resolve()
    if not path.is_file():
        raise ConfigurationError(
            f"no such file: {module}",
            hint="give the path of a .py file, or a dotted module name",
        )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(
            f"cannot import {module}: not a Python module", hint="give the path of a .py file"
        )
    loaded = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # its sibling modules import as they would
    sys.modules[path.stem] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def load_tools(target: str) -> list[Tool]:
    """The tools named by ``MODULE:FUNCTION`` (one) or ``MODULE`` (all of its tools)."""
    module_name, attr = _split(target)
    module = _import(module_name)
    if attr is None:
        found = [value for value in vars(module).values() if isinstance(value, Tool)]
        if not found:
            raise ConfigurationError(
                f"module {module_name} defines no tools",
                hint="decorate functions with @masquerade.tool, or name one: MODULE:FUNCTION",
            )
        return found
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            tools = sorted(n for n, v in vars(module).items() if isinstance(v, Tool))
            have = f"its tools: {', '.join(tools)}" if tools else "it defines no tools"
            raise ConfigurationError(
                f"{module_name} has no attribute {attr!r}",
                hint=f"check the name after the colon ({have})",
            ) from None
    if isinstance(obj, Tool):
        return [obj]
    if callable(obj) and not isinstance(obj, type):
        return [as_tool(obj)]
    what = "a class" if isinstance(obj, type) else f"a value of type {type(obj).__name__}"
    raise ConfigurationError(
        f"{target} is {what}, not a tool or a function",
        hint="point at a function, ideally one decorated with @masquerade.tool",
    )
