"""The architecture, kept true by tests (see docs/concepts/architecture.md).

- No import cycles inside a package (imports read from the code with ``ast``; imports
  under ``if TYPE_CHECKING:`` are left out, relative imports are resolved).
- No source file over :data:`MAX_LINES` lines.
- The core never imports a plugin.
- The core's rooms are layered: core <- builtin <- graph <- cli.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from collections.abc import Collection, Iterator
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Packages whose modules must not import each other in a circle.
PACKAGES: list[str] = ["masquerade", "masquerade_openai", "masquerade_runway", "masquerade_dbos"]

#: Folders whose ``.py`` files must stay under MAX_LINES lines.
SIZE_CHECKED_ROOTS: list[Path] = [
    ROOT / "src" / "masquerade",
    ROOT / "plugins" / "masquerade-openai" / "src",
    ROOT / "plugins" / "masquerade-runway" / "src",
    ROOT / "plugins" / "masquerade-dbos" / "src",
]
MAX_LINES = 600

#: Provider and extra plugins the core must never import (besides any ``masquerade_*``).
PLUGIN_PACKAGES = frozenset({"masquerade_runway", "masquerade_openai", "masquerade_dbos"})


# ---------------------------------------------------------------------- reading imports
def package_modules(package: str) -> dict[str, Path]:
    """Every module of ``package`` (dotted name -> file)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not a package"
    root = Path(next(iter(spec.submodule_search_locations)))
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(
    module: str, path: Path, is_package: bool, known: Collection[str] = ()
) -> set[str]:
    """Dotted names a module imports at run time (functions' imports included).

    ``from pkg import name`` counts as importing ``pkg.name`` when that is one of the
    ``known`` modules, else as importing ``pkg`` (parent packages that Python runs on
    the way are not counted, as in import-linter).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    modules = package_modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = imported_modules(name, path, path.name == "__init__.py", modules)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# ---------------------------------------------------------------------- the checker itself
def test_the_cycle_finder_finds_cycles_and_ignores_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "circles"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .c import x\n")
    (package / "c.py").write_text("import circles.a\nx = 1\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import b\n"
    )
    (package / "e.py").write_text("from .d import y\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = import_graph("circles")
    finally:
        sys.path.remove(str(tmp_path))
    assert graph["circles.d"] == set()
    assert graph["circles.e"] == {"circles.d"}
    assert cycles(graph) == [["circles.a", "circles.b", "circles.c"]]


# ---------------------------------------------------------------------- the rules
@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    found = cycles(import_graph(package))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("root", SIZE_CHECKED_ROOTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_is_too_long(root: Path) -> None:
    assert root.is_dir(), root
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(root.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines (split them by idea): {long}"


def _plugin_packages() -> set[str]:
    """Top-level packages of every installed distribution that registers a plugin."""
    names = set(PLUGIN_PACKAGES)
    for dist in metadata.distributions():
        groups = {ep.group for ep in dist.entry_points}
        if dist.metadata["Name"] != "masquerade" and groups & {
            "masquerade",
            "masquerade.emulators",
        }:
            top = (dist.read_text("top_level.txt") or "").split()
            names.update(top or {ep.value.split(":")[0].split(".")[0] for ep in dist.entry_points})
    return names


def test_the_core_never_imports_a_plugin() -> None:
    plugins = _plugin_packages()
    assert {"masquerade_runway", "masquerade_openai", "masquerade_example_plugin"} <= plugins
    offenders: dict[str, list[str]] = {}
    for name, path in package_modules("masquerade").items():
        for target in imported_modules(name, path, path.name == "__init__.py"):
            top = target.split(".")[0]
            if top in plugins or top.startswith("masquerade_"):
                offenders.setdefault(name, []).append(target)
    assert not offenders, f"the core imports plugins: {offenders}"


#: Layers of the core distribution, lowest first. A module may import its own layer and
#: lower ones. ``masquerade`` itself (the curated facade) sits above them all.
LAYERS = ("core", "builtin", "graph", "cli")


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts == ["masquerade"]:
        return None
    if len(parts) > 1 and parts[1] in ("builtin", "graph", "cli"):
        return parts[1]
    return "core"


def test_layers_point_down() -> None:
    offenders: list[str] = []
    for module, targets in import_graph("masquerade").items():
        mine = _layer(module)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = _layer(target)
            if theirs is None or LAYERS.index(theirs) > LAYERS.index(mine):
                offenders.append(f"{module} ({mine}) imports {target} ({theirs or 'facade'})")
    assert not offenders, "imports that point up the layers:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------- the map stays true
ARCHITECTURE = ROOT / "docs" / "concepts" / "architecture.md"
_NAME = re.compile(r"^[\w./-]+(/|\.py)$")


def named_in_tree(text: str) -> set[Path]:
    """Paths of the page's first code block, a tree indented by two spaces per level."""
    block = text.split("```", 2)[1]
    named: set[Path] = set()
    stack: list[str] = []
    for line in block.splitlines()[1:]:
        if not line.strip() or "──" in line:
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        names = []
        for token in line.split():
            if not _NAME.match(token):
                break
            names.append(token)
        assert names, f"a line of the tree names no file or folder: {line!r}"
        del stack[depth:]
        for name in names:
            named.add(ROOT.joinpath(*stack, name))
        if names[0].endswith("/"):
            stack.append(names[0].rstrip("/"))
    return named


def test_the_architecture_page_names_real_files_and_every_package() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = named_in_tree(text)
    quoted = {ROOT / m for m in re.findall(r"`((?:src|plugins|tests|docs)/[\w./-]+)`", text)}
    assert len(named) > 40 and len(quoted) > 10
    missing = sorted(str(p.relative_to(ROOT)) for p in named | quoted if not p.exists())
    assert not missing, f"docs/concepts/architecture.md names files that do not exist: {missing}"
    packages = {p.parent for p in (ROOT / "src").rglob("__init__.py")}
    unnamed = sorted(str(p.relative_to(ROOT)) for p in packages if p not in named)
    assert not unnamed, f"docs/concepts/architecture.md does not name the packages {unnamed}"


def test_the_architecture_page_is_linked() -> None:
    assert "concepts/architecture.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "docs/concepts/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")
