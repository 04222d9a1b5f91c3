"""Build real installed distributions for tests: a package plus its ``.dist-info`` with an
``entry_points.txt``, put on ``sys.path`` so that ``importlib.metadata`` finds them exactly
as it finds pip-installed ones (no patched loader)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest


def install_distribution(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    modules: dict[str, str],
    entry_points: dict[str, str],
    *,
    dist: str | None = None,
    version: str = "1.2.3",
    group: str = "masquerade",
) -> tuple[str, str]:
    """Write package ``pkg`` with ``modules`` ({module: source}) and a distribution
    declaring ``entry_points`` ({name: "module:attr" relative to the package}).
    Returns (distribution name, package name)."""
    pkg = f"mqtest_{uuid.uuid4().hex[:8]}"
    dist = dist or pkg.replace("_", "-")
    root = site / pkg
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = [f"[{group}]"] + [f"{k} = {pkg}.{v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    return dist, pkg
