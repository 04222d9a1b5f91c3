"""mkdocs hooks: pages whose content comes from the code or the repository at build time.

* ``<!-- masquerade:cli -->`` becomes the ``--help`` output of every ``masquerade``
  command (see :mod:`cli_reference`), so the CLI reference cannot drift from the CLI.
* ``<!-- masquerade:benchmarks -->`` becomes ``benchmarks/README.md`` when it exists
  (links that point into the repository become plain text: the site cannot serve them).
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
BENCHMARKS = ROOT / "benchmarks" / "README.md"

# [text](relative/link) where the link is not a web address or an in-page anchor.
_RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|mailto:|#)([^)]+)\)")


def benchmarks_page() -> str:
    if not BENCHMARKS.exists():
        return (
            "The figures are collected in `benchmarks/README.md` of the repository (not "
            "assembled yet in this checkout); each area's raw results are in "
            "`benchmarks/results/`."
        )
    text = BENCHMARKS.read_text(encoding="utf-8")
    # The README's own title would be a second h1 on the page.
    text = re.sub(r"\A#\s[^\n]*\n", "", text.lstrip())
    # Headings move one level down, under the page's title.
    text = re.sub(r"^(#{1,5})\s", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
    return _RELATIVE_LINK.sub(lambda m: f"{m.group(1)} (`benchmarks/{m.group(2)}`)", text)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if BENCHMARKS_MARKER in markdown:
        markdown = markdown.replace(BENCHMARKS_MARKER, benchmarks_page())
    return markdown
