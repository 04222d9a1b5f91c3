"""Test helpers: a throwaway PostgreSQL cluster on a loopback port.

::

    from masquerade_dbos.testing import postgres_cluster

    with postgres_cluster() as url:          # "postgresql://postgres@127.0.0.1:54321/postgres"
        ...                                  # worker processes, submitters

The cluster lives in a temporary directory (``initdb`` + ``pg_ctl``), listens on a free
loopback port and on nothing else (no Unix socket in a shared directory), trusts local
connections only, and is stopped and deleted on exit. When the process runs as root,
the cluster runs as the ``postgres`` user (PostgreSQL refuses to run as root).

The binaries are looked up in ``MASQUERADE_PG_BIN``, then on ``PATH`` (``pg_ctl``), then
in ``/usr/lib/postgresql/*/bin`` (Debian's layout), newest version first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["postgres_cluster", "find_postgres_bin", "PostgresNotFound"]


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) were found."""


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    env = os.environ.get("MASQUERADE_PG_BIN")
    candidates: list[Path] = [Path(env)] if env else []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)

    def version(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    )
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found; install PostgreSQL or "
        "set MASQUERADE_PG_BIN to the directory that holds them"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demote() -> tuple[int, int] | None:
    """The uid/gid to run the server as: ``postgres`` when we are root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def postgres_cluster(*, start_timeout: float = 60.0) -> Iterator[str]:
    """Start a fresh PostgreSQL cluster; yield its URL; stop and delete it on exit."""
    bin_dir = find_postgres_bin()
    ids = _demote()
    root = Path(tempfile.mkdtemp(prefix="masquerade-pg-"))
    data = root / "data"
    sockets = root / "sockets"
    sockets.mkdir()
    if ids is not None:
        for path in (root, sockets):
            os.chown(path, *ids)
    kwargs: dict[str, object] = {}
    if ids is not None:
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def run(*args: str) -> None:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=start_timeout,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    port = 0
    started = False
    try:
        run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        for attempt in range(1, 4):
            # The port is free when probed; another process may take it before the server
            # binds it: then the start fails and another port is tried.
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={sockets} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200 -c shared_buffers=32MB"
            )
            try:
                run(
                    str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                    "-l", str(root / "log"), "-w", "-t", str(int(start_timeout)), "start",
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == 3:
                    raise
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
