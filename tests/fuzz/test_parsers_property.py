"""Property tests: every parser of outside input survives anything (bounded for CI).

The long run with the same targets is ``benchmarks/fuzz_parsers.py``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import targets
from .strategies import deep, event_like, frames, json_values

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(frames)
def test_provider_frames_parse_or_fail_cleanly(data: Any) -> None:
    targets.provider_frame(data)


@FAST
@given(frames)
def test_openai_server_frames_never_raise_and_emit_valid_events(data: Any) -> None:
    targets.openai_frame(data)


@FAST
@given(st.one_of(frames.map(lambda f: f if isinstance(f, bytes) else str(f).encode()),
                 event_like().map(lambda e: targets.json_dumps(e).encode())),
       st.sampled_from(["worker:abc", None]))
def test_data_messages_never_raise_and_emit_valid_events(payload: bytes, sender: Any) -> None:
    targets.data_message(payload, sender)


@FAST
@given(st.one_of(st.text(max_size=80), deep(), json_values.map(targets.json_dumps),
                 st.dictionaries(st.text(max_size=8), json_values, max_size=5)
                 .map(lambda d: targets.json_dumps({"args": d}))))
def test_rpc_payloads_become_arguments_or_a_clear_error(payload: str) -> None:
    targets.rpc_payload(payload)


@FAST
@given(st.one_of(st.text(max_size=80), st.binary(max_size=40), deep(),
                 st.dictionaries(st.sampled_from(["order_id", "count", "tags", "x"]),
                                 json_values, max_size=4)))
def test_tool_arguments_validate_or_raise_tool_arguments_error(arguments: Any) -> None:
    targets.tool_arguments(arguments)


@FAST
@given(
    st.one_of(st.binary(max_size=80), frames.map(lambda f: str(f).encode()),
              event_like().map(lambda e: targets.json_dumps(e).encode())),
    st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Id"]),
        st.text(max_size=40),
        max_size=3,
    ),
    st.booleans(),
)
def test_webhooks_verify_or_raise_verification_error(
    body: bytes, headers: dict[str, str], sign: bool
) -> None:
    targets.webhook(body, headers, sign=sign)


@FAST
@given(st.one_of(st.text(max_size=30), st.just("worker:x"), st.just("frontend:worker:x"),
                 st.just("Worker:x"), st.text(max_size=10).map(lambda t: "worker:" + t)))
def test_only_the_worker_may_send_data_messages(sender: str) -> None:
    targets.sender_identity(sender)
