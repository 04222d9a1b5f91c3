"""mkdocs hooks: pages whose content comes from the code or the repository at build time.

* ``<!-- masquerade:cli -->`` becomes the ``--help`` output of every ``masquerade``
  command (see :mod:`cli_reference`), so the CLI reference cannot drift from the CLI.
* ``<!-- masquerade:benchmarks -->`` becomes ``benchmarks/README.md`` when it exists, else
  every ``benchmarks/results/*.md`` (links that point into the repository become plain
  text: the site cannot serve them).
* ``<!-- masquerade:service-api -->`` becomes the call service's API reference, generated
  from its OpenAPI document (``masquerade_dbos.service.openapi_schema``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from cli_reference import cli_reference  # noqa: E402

CLI_MARKER = "<!-- masquerade:cli -->"
BENCHMARKS_MARKER = "<!-- masquerade:benchmarks -->"
SERVICE_MARKER = "<!-- masquerade:service-api -->"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
RESULTS = ROOT / "benchmarks" / "results"

# [text](relative/link) where the link is not a web address or an in-page anchor.
_RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|mailto:|#)([^)]+)\)")


def _shift_headings(text: str, top: int) -> str:
    """Move headings so the highest one is at level ``top``."""
    levels = [len(m.group(1)) for m in re.finditer(r"^(#{1,6})\s", text, flags=re.M)]
    if not levels:
        return text
    shift = top - min(levels)
    return re.sub(
        r"^(#{1,6})\s", lambda m: "#" * min(6, len(m.group(1)) + shift) + " ", text, flags=re.M
    )


def _plain_links(text: str, base: str) -> str:
    return _RELATIVE_LINK.sub(lambda m: f"{m.group(1)} (`{base}{m.group(2)}`)", text)


def benchmarks_page() -> str:
    if BENCHMARKS.exists():
        text = BENCHMARKS.read_text(encoding="utf-8").lstrip()
        # The README's own title would be a second h1 on the page.
        text = re.sub(r"\A#\s[^\n]*\n", "", text).lstrip()
        return _plain_links(_shift_headings(text, 2), "benchmarks/")
    results = sorted(RESULTS.glob("*.md")) if RESULTS.is_dir() else []
    if not results:
        return "No figures have been recorded yet: run the scripts in `benchmarks/`."
    parts = [
        "Figures per area, as recorded in `benchmarks/results/` (the summary in "
        "`benchmarks/README.md` is not assembled yet in this checkout)."
    ]
    for path in results:
        text = path.read_text(encoding="utf-8").strip()
        if not text.startswith("#"):
            text = f"## {path.stem}\n\n{text}"
        parts.append(_plain_links(_shift_headings(text, 2), "benchmarks/results/"))
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if BENCHMARKS_MARKER in markdown:
        markdown = markdown.replace(BENCHMARKS_MARKER, benchmarks_page())
    if SERVICE_MARKER in markdown:
        from masquerade_dbos.service import render_markdown

        markdown = markdown.replace(SERVICE_MARKER, _shift_headings(render_markdown(), 2))
    return markdown
