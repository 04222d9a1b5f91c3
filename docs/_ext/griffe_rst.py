"""A griffe extension that renders masquerade's reST-flavoured docstrings as Markdown.

masquerade's docstrings are written to read well in ``help()`` and in an editor: Google
sections (``Args:``), Sphinx fields (``:param x:``, handled by griffe's ``auto`` style),
and a few reST constructs that Markdown does not know. This extension rewrites those,
once the whole package is loaded and before any docstring is parsed:

* roles (``:class:`~masquerade.Host```, ``:meth:`emit```...) become cross-references
  (optional ones: a name that is not rendered anywhere stays plain code, never a warning);
* ``Example::`` + an indented block becomes ``Example:`` + a fenced code block;
* ``>>>`` doctest lines become a ``pycon`` code block (Markdown would read them as quotes);
* simple reST tables (``=====  =====``) become Markdown tables.

The docstrings in the source are left untouched: only what the site renders changes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj|const):`(~?)([^`<>]+?)`")
_BORDER = re.compile(r"^(\s*)(=+)((?:\s+=+)+)\s*$")


class RstToMarkdown(griffe.Extension):
    """Rewrite the docstrings of every loaded package (see the module docs)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, _Resolver(obj, loader))


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if member.is_alias:
            continue
        assert isinstance(member, griffe.Object)
        found.extend(_walk(member))
    return found


class _Resolver:
    """Turns the target of a role into a full dotted path, trying the places Sphinx
    would: as written, then relative to the enclosing class, module and package."""

    def __init__(self, obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
        self.obj = obj
        self.collection = loader.modules_collection

    def __call__(self, target: str) -> str:
        target = target.strip().rstrip("()")
        scopes: list[str] = []
        node: griffe.Object | None = self.obj
        while node is not None:
            if node.is_class or node.is_module:
                scopes.append(node.path)
            node = node.parent
        for candidate in [target, *(f"{scope}.{target}" for scope in scopes)]:
            if self._exists(candidate):
                return candidate
        return target

    def _exists(self, path: str) -> bool:
        try:
            self.collection.get_member(path)
        except Exception:
            return False
        return True


def convert(text: str, resolve: Any = None) -> str:
    """Convert one docstring's reST constructs to Markdown."""
    text = _convert_tables(text)
    text = _convert_literal_blocks(text)
    text = _convert_doctests(text)
    return _convert_roles(text, resolve or (lambda t: t))


def _convert_roles(text: str, resolve: Any) -> str:
    out: list[str] = []
    fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence:
            line = _ROLE.sub(lambda m: _autoref(m.group(2), bool(m.group(1)), resolve), line)
        out.append(line)
    return "\n".join(out)


def _autoref(target: str, short: bool, resolve: Any) -> str:
    title = target.rsplit(".", 1)[-1] if short else target
    identifier = resolve(target)
    return (
        f'<autoref identifier="{html.escape(identifier)}" optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _language(block: list[str]) -> str:
    first = next((line.strip() for line in block if line.strip()), "")
    if first.startswith("$ "):
        return "console"
    if first.startswith("[") or ("toml" in first and first.startswith("#")):
        return "toml"
    return "python"


def _outside_fences(text: str, convert: Callable[[list[str], int, list[str]], int | None]) -> str:
    """Rewrite ``text`` line by line outside fenced code: ``convert(lines, i, out)``
    appends what line ``i`` starts to ``out`` and returns the next line's index, or
    returns ``None`` to keep line ``i`` as it is."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence:
            after = convert(lines, i, out)
            if after is not None:
                i = after
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _literal_block(lines: list[str], i: int, out: list[str]) -> int | None:
    line = lines[i]
    if not line.rstrip().endswith("::") or line.strip().startswith(">>>"):
        return None
    stripped = line.rstrip()
    intro = stripped[:-2].rstrip()
    base = _indent(line)
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    block_start = j
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
        j += 1
    while j > block_start and not lines[j - 1].strip():
        j -= 1
    block = lines[block_start:j]
    if not block and i == 0:
        # A summary line ending in "::": the docstring was dedented as a whole, so
        # the example sits at the summary's indent, up to the next blank line.
        j = block_start
        while j < len(lines) and lines[j].strip():
            j += 1
        block = [" " * (base + 4) + b for b in lines[block_start:j]]
    if not block or not all(_indent(b) > base for b in block if b.strip()):
        return None
    if intro:
        out.append(intro if intro.endswith(":") else intro + ":")
        out.append("")
    depth = min(_indent(b) for b in block if b.strip())
    pad = " " * base
    out.append(f"{pad}```{_language(block)}")
    out.extend(pad + b[depth:] if b.strip() else "" for b in block)
    out.append(f"{pad}```")
    return j


def _doctest(lines: list[str], i: int, out: list[str]) -> int | None:
    line = lines[i]
    if not line.lstrip().startswith(">>>"):
        return None
    pad = " " * _indent(line)
    j = i
    while j < len(lines) and lines[j].strip():
        j += 1
    if out and out[-1].strip():
        out.append("")
    out.append(f"{pad}```pycon")
    out.extend(lines[i:j])
    out.append(f"{pad}```")
    return j


def _convert_literal_blocks(text: str) -> str:
    return _outside_fences(text, _literal_block)


def _convert_doctests(text: str) -> str:
    return _outside_fences(text, _doctest)


def _convert_tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _BORDER.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        # Column spans from the border: runs of '='.
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]
        j = i + 1
        rows: list[list[str]] = []
        borders = 1
        while j < len(lines) and borders < 3:
            line = lines[j]
            if _BORDER.match(line):
                borders += 1
                j += 1
                continue
            if not line.strip():
                j += 1
                continue
            cells = _cells(line, spans)
            if rows and not cells[0] and borders >= 2:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
            else:
                rows.append(cells)
            j += 1
        if borders < 3 or not rows:
            out.append(lines[i])
            i += 1
            continue
        pad = " " * len(match.group(1))
        header, body = rows[0], rows[1:]
        out.append(pad + "| " + " | ".join(header) + " |")
        out.append(pad + "|" + "|".join("---" for _ in header) + "|")
        for row in body:
            out.append(pad + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        out.append("")
        i = j
    return "\n".join(out)


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    cells = []
    for n, (start, end) in enumerate(spans):
        stop = spans[n + 1][0] if n + 1 < len(spans) else len(line)
        cells.append(line[start:stop].strip() if len(line) > start else "")
        del end
    return cells
