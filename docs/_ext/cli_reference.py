"""The CLI reference page's content, generated from the real ``masquerade`` parser.

``docs/reference/cli.md`` holds a marker that the mkdocs hook (:mod:`mkdocs_hooks`)
replaces with :func:`cli_reference`, so the page is always the ``--help`` output of the
installed command: every subcommand, nested ones included. ``tests/test_docs.py`` checks
it against ``masquerade ... --help`` run for real.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

#: Help is wrapped at this width, on the page and in the test that compares them.
COLUMNS = 88


@contextlib.contextmanager
def fixed_columns(columns: int = COLUMNS) -> Iterator[None]:
    """argparse wraps help at ``$COLUMNS``: pin it so the page does not depend on the
    terminal that builds the site."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command path, parser) pair, depth first: ``()``, ``("plugins",)``,
    ``("tools",)``, ``("tools", "schema")``..."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*prefix, name))


def help_texts() -> dict[tuple[str, ...], str]:
    """``--help`` of every command, as the command prints it at :data:`COLUMNS`."""
    from masquerade.cli import build_parser

    with fixed_columns():
        parser = build_parser()
        return {path: sub.format_help() for path, sub in commands(parser)}


def cli_reference() -> str:
    """Markdown: one section per command with its ``--help`` output."""
    parts: list[str] = []
    for path, text in help_texts().items():
        title = " ".join(("masquerade", *path))
        level = "##" if len(path) <= 1 else "###"
        parts.append(f"{level} `{title}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)
