"""Cost of session secrets: registering, masking and releasing LiveKit-like tokens that
all share one prefix.

    python3 -m uv run python benchmarks/bench_redaction.py [--held 50000] [--more 30000]

Registers ``--held`` tokens (``eyJhbGci...``, as every LiveKit token starts) in one
session scope, then times registering ``--more`` in another scope, masking a log line
log line that holds one token (median of 2,000 lines, against masking the same line with
no secrets registered), and releasing both scopes. The figures should not grow with
``--held``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

from masquerade import redact, register_session_secret
from masquerade._redact import SecretScope, known_secret_count, reset_secret_scope, use_secret_scope


def token() -> str:
    return "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(90) + "." + secrets.token_urlsafe(32)


def register_all(scope: SecretScope, values: list[str]) -> float:
    reset = use_secret_scope(scope)
    try:
        started = time.perf_counter()
        for value in values:
            register_session_secret(value)
        return time.perf_counter() - started
    finally:
        reset_secret_scope(reset)


def mask_line(line: str, rounds: int = 2000) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        redact(line)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--held", type=int, default=50_000)
    parser.add_argument("--more", type=int, default=30_000)
    args = parser.parse_args()
    held, more = SecretScope(), SecretScope()
    held_tokens = [token() for _ in range(args.held)]
    more_tokens = [token() for _ in range(args.more)]
    line = "joined r_42 with " + held_tokens[args.held // 2] + " ok"
    empty = mask_line(line)
    register_all(held, held_tokens)
    took = register_all(more, more_tokens)
    masked = mask_line(line)
    assert redact(line) == "joined r_42 with [redacted] ok"
    count = known_secret_count()
    started = time.perf_counter()
    held.release()
    more.release()
    released = time.perf_counter() - started
    print(f"secrets held while measuring: {count}")
    print(f"register {args.more} more: {took:.3f} s ({took / args.more * 1e6:.1f} us each)")
    print(f"mask one {len(line)}-char line: {masked * 1e6:.1f} us (no secrets registered: "
          f"{empty * 1e6:.1f} us)")
    print(f"release both scopes: {released:.3f} s; secrets left: {known_secret_count()}")


if __name__ == "__main__":
    main()
