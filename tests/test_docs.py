"""The documentation cannot rot: its code runs, its references cover the API, its CLI page
is the real ``--help``, and every environment variable the code reads is documented.

* Every runnable sample is a file under ``docs/snippets/`` included into a page with
  ``--8<--``; each one is run here (on both anyio backends), and when a page shows its
  output (a ``$ python NAME.py`` console block) the output must match.
* Every other fenced ``python`` block in ``docs/`` must at least compile.
* Every public name (``__all__`` of masquerade and of the provider plugins) and every hook
  has a ``:::`` reference entry.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from masquerade import hookspecs
from masquerade.cli import COMMANDS, main, plugin_commands

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
REFERENCE = DOCS / "reference"

sys.path.insert(0, str(DOCS / "_ext"))
from cli_reference import cli_reference, fixed_columns, help_texts  # noqa: E402

pytest_plugins = ["pytester"]

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')
CONSOLE_RUN = re.compile(r"\A\$ python (?P<name>[\w]+)\.py\n(?P<output>.*)\Z", re.S)
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.M)


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts)


def fences(language: str | None = None) -> Iterator[tuple[Path, str, str]]:
    """(page, info string, body) of every fenced block, optionally of one language."""
    for page in pages():
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            info = match["info"].strip()
            lang = info.split()[0] if info else ""
            if language is None or lang == language:
                body = "\n".join(
                    line[len(match["indent"]) :] for line in match["body"].splitlines()
                )
                yield page, info, body


def shown_outputs() -> dict[str, str]:
    """What the pages say ``python NAME.py`` prints, by snippet name."""
    shown: dict[str, str] = {}
    for page, _, body in fences("console"):
        match = CONSOLE_RUN.match(body.strip("\n"))
        if match is not None:
            assert match["name"] not in shown, f"{page}: output of {match['name']} shown twice"
            shown[match["name"]] = match["output"]
    return shown


def load_snippet(name: str) -> ModuleType:
    """Import ``docs/snippets/NAME.py`` as a fresh module (siblings importable)."""
    if str(SNIPPETS) not in sys.path:
        sys.path.insert(0, str(SNIPPETS))
    spec = importlib.util.spec_from_file_location(f"docs_snippet_{name}", SNIPPETS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `python NAME.py` would have it (__main__)
    spec.loader.exec_module(module)
    return module


def matches(expected: str, actual: str, *, unordered: bool = False) -> bool:
    """Line by line; ``...`` in an expected line stands for any text."""
    want = [line.rstrip() for line in expected.strip("\n").splitlines()]
    got = [line.rstrip() for line in actual.strip("\n").splitlines()]
    if unordered:
        want, got = sorted(want), sorted(got)
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        pattern = ".*".join(re.escape(part) for part in w.split("..."))
        if re.fullmatch(pattern, g) is None:
            return False
    return True


# ------------------------------------------------------------------ code blocks
def test_every_python_block_is_an_include_or_compiles() -> None:
    checked = 0
    for page, info, body in fences("python"):
        if INCLUDE.search(body):
            assert body.strip().startswith("--8<--"), f"{page}: mixed include and code"
            continue
        try:
            compile(body, f"{page}:{info}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            pytest.fail(f"a python block of {page.relative_to(ROOT)} does not compile: {exc}")
        checked += 1
    assert checked > 0


def test_every_include_exists_and_every_snippet_is_included() -> None:
    included: set[Path] = set()
    for page in pages():
        for target in INCLUDE.findall(page.read_text(encoding="utf-8")):
            path = ROOT / target
            assert path.is_file(), f"{page.relative_to(ROOT)} includes missing {target}"
            included.add(path.resolve())
    snippets = {p.resolve() for p in SNIPPETS.iterdir() if p.is_file()}
    assert snippets, "no snippets found"
    orphans = sorted(p.name for p in snippets - included)
    assert not orphans, f"snippets no page includes: {orphans}"


# ------------------------------------------------------------------ runnable snippets
def check_quickstart_session(result: Any, out: str) -> None:
    assert "completed ['lookup_order']" in out


def check_quickstart_graph(result: Any, out: str) -> None:
    assert result.summary == "Ada: completed, ['booked Monday at 10:00']"


def check_host_plugins(result: Any, out: str) -> None:
    assert result["Misspelled"] == "failed"
    assert result["TranscriptPrinter"] == "loaded"


def check_session_lifecycle(result: Any, out: str) -> None:
    assert result[0] == "provisioning"
    assert "provisioning:NOT_READY (queued)" in result
    assert result[-1] == "ended: completed (done)"


def check_poller_retry(result: Any, out: str) -> None:
    assert result == 1  # the one rate-limited status check was retried
    assert out.startswith("10 completed")


def check_events_match(result: Any, out: str) -> None:
    assert "provider event brand.new.event" in result
    assert result[-1] == "audio: 4800 bytes"


def check_tools_define(result: Any, out: str) -> None:
    kinds = [line.split(": ")[1] for line in result]
    assert kinds[1:] == ["exception", "booked monday at 10:00 for 1 Main St, Oslo",
                         "arguments", "timeout", "not_found"]


def check_graph_routing(result: Any, out: str) -> None:
    assert result.notes == ["refund issued", "email sent to Ada", "sms sent",
                            "closed with 3 notes"]


def check_plugin_hooks(result: Any, out: str) -> None:
    assert "alert: store_hours failed (arguments)" in result
    assert result[-1] == "vetoed: failed: sessions over 10 minutes are not allowed here"


def check_plugin_provider(result: Any, out: str) -> None:
    assert result.splitlines()[-1] == "assistant: echo: GOOD NEWS"


def check_testing_observer(result: Any, out: str) -> None:
    assert result == ["failed (network), cancel path: ['error']", "failed: service unavailable"]


def check_security_redaction(result: Any, out: str) -> None:
    assert "my-own-service-credential-7f3a9c" not in out
    assert out.count("[redacted]") >= 5


def check_tracing_spans(result: Any, out: str) -> None:
    assert "invoke_agent concierge" in [line.strip() for line in result]
    agent = next(line for line in result if line.strip() == "invoke_agent concierge")
    tool = next(line for line in result if line.strip() == "execute_tool lookup_order")
    assert len(tool) - len(tool.lstrip()) > len(agent) - len(agent.lstrip())  # nested
    assert '"status": "shipped"' in out  # content capture was on


def check_runway_web_app(result: Any, out: str) -> None:
    assert result["status"] == "completed"
    assert result["tools"] == ["lookup_order"]


def check_langgraph_node(result: Any, out: str) -> None:
    assert result["ticket"] == "Ada: completed, 1 tool call(s)"


def check_openai_voice(result: Any, out: str) -> None:
    assert result[1] == "tool lookup_order -> {'order_id': 'A1001', 'status': 'shipped'}"
    assert result[-1].startswith("completed, 4 turns")


def check_openai_browser(result: Any, out: str) -> None:
    assert result[0] == "answer: v=0, 2 media sections"
    assert result[3] == "tool lookup_order -> {'order_id': 'A1001', 'status': 'shipped'}"
    assert result[-1] == "call ended, hung up by the server"


def check_sip_webhook_app(result: Any, out: str) -> None:
    assert result[0] == "unsigned webhook: HTTP 400"
    assert result[-1] == "completed; tools: ['lookup_order']"


class Run:
    """How a snippet's main() is checked."""

    def __init__(
        self, check: Callable[[Any, str], None], *, unordered: bool = False,
        asyncio_only: bool = False,
    ) -> None:
        self.check = check
        self.unordered = unordered  # concurrent work prints in any order
        self.asyncio_only = asyncio_only


RUNNABLE: dict[str, Run] = {
    "quickstart_session": Run(check_quickstart_session),
    "quickstart_graph": Run(check_quickstart_graph),
    "host_plugins": Run(check_host_plugins),
    "session_lifecycle": Run(check_session_lifecycle),
    "poller_retry": Run(check_poller_retry),
    "events_match": Run(check_events_match),
    "tools_define": Run(check_tools_define),
    "graph_routing": Run(check_graph_routing, unordered=True),
    "plugin_hooks": Run(check_plugin_hooks),
    "plugin_provider": Run(check_plugin_provider),
    "testing_observer": Run(check_testing_observer),
    "security_redaction": Run(check_security_redaction),
    "tracing_spans": Run(check_tracing_spans),
    "runway_web_app": Run(check_runway_web_app),
    # LangGraph schedules its nodes with asyncio tasks: it does not run on trio.
    "langgraph_node": Run(check_langgraph_node, asyncio_only=True),
    "openai_voice": Run(check_openai_voice),
    "sip_webhook_app": Run(check_sip_webhook_app),
    "openai_browser": Run(check_openai_browser),
}
#: snippets that are pytest files, run by test_snippet_test_files_pass
TEST_FILES = {"test_quickstart_graph"}
#: snippets that are data: read by another snippet or command, or served to a browser
DATA = {"quickstart_script.json", "runway_web_page.html"}


def test_every_snippet_is_run() -> None:
    names = {p.stem for p in SNIPPETS.glob("*.py")}
    assert names == set(RUNNABLE) | TEST_FILES, "add new snippets to RUNNABLE or TEST_FILES"
    assert {p.name for p in SNIPPETS.iterdir() if p.suffix != ".py"} - {"__pycache__"} == DATA


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(RUNNABLE))
async def test_snippet_runs_and_prints_what_the_page_shows(name: str, anyio_backend: str) -> None:
    run = RUNNABLE[name]
    if run.asyncio_only and anyio_backend != "asyncio":
        pytest.skip(f"{name} runs on asyncio only")
    module = load_snippet(name)
    check, unordered = run.check, run.unordered
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = await module.main()
    out = buffer.getvalue()
    check(result, out)
    shown = shown_outputs().get(name)
    if shown is not None:
        assert matches(shown, out, unordered=unordered), (
            f"the docs show this output for {name}.py:\n{shown}\nbut it printed:\n{out}"
        )


def test_quickstart_script_file_is_the_quickstart_conversation() -> None:
    import json

    steps = json.loads((SNIPPETS / "quickstart_script.json").read_text())
    assert steps == load_snippet("quickstart_graph").SCRIPT


def test_snippet_test_files_pass(pytester: pytest.Pytester) -> None:
    for name in sorted(TEST_FILES):
        result = pytester.runpytest_inprocess(
            str(SNIPPETS / f"{name}.py"), "-p", "no:cacheprovider", "-q"
        )
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) >= 2, result.stdout.str()
        assert "failed" not in outcomes, result.stdout.str()
        assert "errors" not in outcomes, result.stdout.str()
        assert "error" not in outcomes, result.stdout.str()


def test_graph_page_draws_the_snippet_graph() -> None:
    drawn = [body for page, _, body in fences("mermaid") if page.name == "graphs.md"]
    assert drawn, "graphs.md has no mermaid diagram"
    assert drawn[0].strip() == load_snippet("graph_routing").graph.mermaid().strip()


# ------------------------------------------------------------------ reference coverage
def directives() -> set[str]:
    found: set[str] = set()
    for page in REFERENCE.rglob("*.md"):
        found.update(DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return found


PUBLIC_MODULES = [
    "masquerade",
    "masquerade_runway",
    "masquerade_runway.emulator",
    "masquerade_openai",
    "masquerade_openai.emulator",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_reference_entry(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        pytest.skip(f"{module_name} is not importable here")
    exported = getattr(module, "__all__", None)
    assert exported, f"{module_name} has no __all__"
    entries = directives()
    text = "\n".join(p.read_text(encoding="utf-8") for p in REFERENCE.rglob("*.md"))
    missing = []
    for name in exported:
        if name.startswith("__"):
            if f"{module_name}.{name}" not in text:  # e.g. __version__: mentioned in prose
                missing.append(name)
        elif f"{module_name}.{name}" not in entries:
            missing.append(name)
    assert not missing, f"no `::: {module_name}.NAME` entry in docs/reference for {missing}"


def test_every_hook_has_a_reference_entry() -> None:
    hooks = sorted(n for n in dir(hookspecs) if n.startswith("masquerade_"))
    assert len(hooks) >= 7
    page = (REFERENCE / "hooks.md").read_text(encoding="utf-8")
    assert "::: masquerade.hookspecs" in page
    for hook in hooks:
        assert f"        - {hook}\n" in page, f"{hook} is not in the members of hooks.md"
        assert f"[masquerade.hookspecs.{hook}]" in page, f"{hook} is not in the hooks table"
        assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring"


def test_reference_entries_name_real_objects() -> None:
    for entry in sorted(directives()):
        parts = entry.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                assert hasattr(obj, attr), f"`::: {entry}`: {attr!r} does not exist"
                obj = getattr(obj, attr)
            break
        else:
            pytest.fail(f"`::: {entry}` names no importable module")


# ------------------------------------------------------------------ CLI reference
def test_cli_reference_is_the_real_help(capsys: pytest.CaptureFixture[str]) -> None:
    texts = help_texts()
    builtin = {name for name, _ in COMMANDS}
    assert {path[0] for path in texts if path} == builtin | set(plugin_commands())
    for path, text in texts.items():
        with fixed_columns(), pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out == text, f"masquerade {' '.join(path)} --help"
    page = cli_reference()
    for path in texts:
        assert f"`{' '.join(('masquerade', *path))}`" in page
    assert "<!-- masquerade:cli -->" in (REFERENCE / "cli.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ configuration
ENV_READ = re.compile(
    r"""(?:environ|env|getenv)(?:\.get)?\(\s*["']([A-Z][A-Z0-9_]{2,})["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]{2,})["']\s*\]"""
    r"""|^[A-Z_]*ENV\s*(?::[^=]+)?=\s*["']([A-Z][A-Z0-9_]{2,})["']""",
    re.M,
)


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    sources = [*(ROOT / "src").rglob("*.py"), *(ROOT / "plugins").rglob("src/**/*.py")]
    names: set[str] = set()
    for path in sources:
        for groups in ENV_READ.findall(path.read_text(encoding="utf-8")):
            names.update(g for g in groups if g)
    assert {"MASQUERADE_PLUGINS", "MASQUERADE_DISABLE_PLUGINS", "RUNWAYML_API_SECRET"} <= names
    page = (REFERENCE / "configuration.md").read_text(encoding="utf-8")
    missing = sorted(n for n in names if f"`{n}`" not in page)
    assert not missing, f"docs/reference/configuration.md does not document {missing}"


# ------------------------------------------------------------------ site helpers
def test_benchmarks_page_includes_the_readme_with_repository_links_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mkdocs_hooks

    readme = tmp_path / "README.md"
    results = tmp_path / "results"
    monkeypatch.setattr(mkdocs_hooks, "BENCHMARKS", readme)
    monkeypatch.setattr(mkdocs_hooks, "RESULTS", results)
    assert "No figures" in mkdocs_hooks.benchmarks_page()

    results.mkdir()
    (results / "poller.md").write_text("# Poller\n\n| sessions | polls |\n|---|---|\n| 1 | 4 |\n")
    (results / "tools.md").write_text("Command: `bench_tools.py`, see [notes](notes.md).\n")
    page = mkdocs_hooks.benchmarks_page()
    assert "## Poller" in page
    assert "| 1 | 4 |" in page
    assert "## tools" in page
    assert "notes (`benchmarks/results/notes.md`)" in page

    readme.write_text(
        "# Benchmarks\n\n## Session loop\n\nSee [the figures](results/foundation.md) and "
        "[anyio](https://anyio.readthedocs.io/).\n"
    )
    page = mkdocs_hooks.benchmarks_page()
    assert not page.startswith("# Benchmarks")  # the page has its own title
    assert page.startswith("## Session loop")
    assert "the figures (`benchmarks/results/foundation.md`)" in page
    assert "[anyio](https://anyio.readthedocs.io/)" in page
    assert "Poller" not in page  # the README replaces the raw results


def test_docstring_rest_constructs_become_markdown() -> None:
    from griffe_rst import convert

    text = (
        "Run one :class:`~masquerade.Session` with :meth:`Host.session`::\n"
        "\n"
        "    async with host.session(request) as session:\n"
        "        ...\n"
        "\n"
        "=====  =========\n"
        "step   what\n"
        "=====  =========\n"
        "poll   until ready\n"
        "       (shared)\n"
        "end    once\n"
        "=====  =========\n"
        "\n"
        ">>> redact('x')\n"
        "'x'\n"
    )
    out = convert(text, lambda target: f"pkg.{target}")
    assert '<autoref identifier="pkg.~masquerade.Session"' not in out
    assert '<autoref identifier="pkg.masquerade.Session" optional><code>Session</code>' in out
    assert "<code>Host.session</code>" in out
    assert "```python\nasync with host.session(request) as session:\n    ...\n```" in out
    assert "| step | what |" in out
    assert "| poll | until ready (shared) |" in out
    assert "```pycon\n>>> redact('x')\n'x'\n```" in out
    assert "::" not in out
