"""The long fuzz run: every parser of outside input against many generated inputs.

    python3 -m uv run python benchmarks/fuzz_parsers.py [--inputs 120000] [--seed 1]

Targets (``tests/fuzz/targets.py``, shared with the hypothesis tests): normalized
provider frames (``parse_event``), OpenAI Realtime server frames (through the session's
handler table), Runway data messages, Runway RPC payloads, tool
arguments, signed and unsigned webhooks, and the data-message sender rule. Inputs are
drawn from a seeded generator that mixes well-formed frames with wrong-typed fields,
truncations, byte flips, very deep nesting, huge strings and random bytes. A failure is
any guarantee a target checks: an unexpected exception, or an event that does not validate
against its model. Prints inputs tried and failures per target; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz import targets
from tests.fuzz.strategies import FIELD_NAMES, TYPE_NAMES


def scalar(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 2**64, 1.5, float(rng.random()), "", "x" * rng.randint(1, 40),
        "é\u2603\x00", str(rng.random()), [], {},
    ])


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return scalar(rng)
    if roll < 0.75:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(FIELD_NAMES): value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def frame(rng: random.Random) -> Any:
    obj = {rng.choice(FIELD_NAMES): value(rng) for _ in range(rng.randint(0, 6))}
    obj["type"] = rng.choice(TYPE_NAMES)
    return obj


def deep_text(rng: random.Random) -> str:
    depth = rng.choice([70, 500, 5_000, 50_000])
    opener = rng.choice(["[", '{"a":', '{"type":"transcription","args":'])
    closer = "]" if opener == "[" else "}"
    return opener * depth + "1" + (closer * depth if rng.random() < 0.5 else "")


def mutate(rng: random.Random, text: str) -> str:
    if not text:
        return text
    roll = rng.random()
    i = rng.randrange(len(text))
    if roll < 0.3:
        return text[:i]
    if roll < 0.6:
        return text[:i] + chr(rng.randrange(0x20, 0x3000)) + text[i + 1 :]
    if roll < 0.8:
        return text[:i] + text[i:] * rng.randint(2, 5)
    return text[:i] + rng.choice(['"', "{", "[", "\\", "\x00"]) + text[i:]


def text_input(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return json.dumps(frame(rng))
    if roll < 0.7:
        return mutate(rng, json.dumps(frame(rng)))
    if roll < 0.85:
        return deep_text(rng)
    if roll < 0.95:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))).decode(
            "utf-8", "replace"
        )
    return '{"type":"transcription","text":"' + "x" * rng.randint(10_000, 200_000) + '"}'


def make_input(name: str, rng: random.Random) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if name == "provider_frame":
        roll = rng.random()
        if roll < 0.2:
            return (frame(rng),), {}
        if roll < 0.3:
            return (bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))),), {}
        return (text_input(rng),), {}
    if name == "openai_frame":
        roll = rng.random()
        if roll < 0.5:
            return (frame(rng),), {}
        return (text_input(rng),), {}
    if name == "data_message":
        sender = rng.choice(["worker:abc", None, "user:1"])
        return (text_input(rng).encode("utf-8", "surrogatepass"),), {"sender": sender}
    if name == "rpc_payload":
        roll = rng.random()
        if roll < 0.3:
            return (json.dumps({"args": {rng.choice(["order_id", "count", "tags"]): value(rng)
                                         for _ in range(3)}}),), {}
        return (text_input(rng),), {}
    if name == "tool_arguments":
        roll = rng.random()
        if roll < 0.4:
            return ({rng.choice(["order_id", "count", "tags", "x"]): value(rng)
                     for _ in range(rng.randint(0, 4))},), {}
        return (text_input(rng),), {}
    if name == "webhook":
        body = text_input(rng).encode("utf-8", "surrogatepass")
        headers = {
            h: rng.choice(["", "v1,ÄÖÜ", "v1,AAAA", str(int(time.time())), "wh_1", "١٢٣",
                           "x" * 300, mutate(rng, "v1,abcdef==")])
            for h in rng.sample(["webhook-id", "webhook-timestamp", "webhook-signature"],
                                rng.randint(0, 3))
        }
        return (body, headers), {"sign": rng.random() < 0.5}
    if name == "sender_identity":
        return (rng.choice(["worker:", "worker:x", "Worker:x", "user", "", "w", "agent:worker:",
                            "worker:" + mutate(rng, "abc")]),), {}
    raise ValueError(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=120_000, help="total inputs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    names = list(targets.TARGETS)
    tried: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    examples: dict[str, str] = {}
    started = time.perf_counter()
    for i in range(args.inputs):
        name = names[i % len(names)]
        positional, keywords = make_input(name, rng)
        tried[name] += 1
        try:
            targets.TARGETS[name](*positional, **keywords)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            failed[name] += 1
            examples.setdefault(name, f"{type(exc).__name__}: {exc!s:.300}\n"
                                      f"{traceback.format_exc(limit=3)}")
    elapsed = time.perf_counter() - started
    print(f"{'target':<18} {'tried':>8} {'failed':>7}")
    for name in names:
        print(f"{name:<18} {tried[name]:>8} {failed[name]:>7}")
    total_failed = sum(failed.values())
    print(f"{'total':<18} {sum(tried.values()):>8} {total_failed:>7}   ({elapsed:.1f}s, "
          f"seed {args.seed})")
    for name, text in examples.items():
        print(f"\nfirst failure of {name}:\n{text}")
    return 1 if total_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
