"""List installed plugins: built-in and entry-point, loaded, failed or disabled."""

from __future__ import annotations

import argparse
import json

from ..host import Host


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    host = Host()
    infos = host.plugin_info()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    rows = [("NAME", "STATUS", "SOURCE", "VERSION", "HOOKS")]
    for info in infos:
        source = "built-in" if info.builtin else (info.distribution or "-")
        hooks = ", ".join(h.removeprefix("masquerade_") for h in info.hooks) or "-"
        rows.append((info.name, info.status, source, info.version or "-", hooks))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    failed = [i for i in infos if i.status == "failed"]
    for info in failed:
        print(f"\n{info.name} failed: {info.error}")
    providers = ", ".join(sorted(host.providers)) or "none"
    print(f"\nproviders: {providers}")
    return 0
