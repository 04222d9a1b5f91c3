"""verify_webhook under hostile input: one error type for everything, replays refused."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from masquerade_openai import (
    MemoryReplayStore,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

SECRET = "whsec_" + base64.b64encode(b"h" * 32).decode()
BODY = json.dumps({"id": "evt_1", "type": "realtime.call.incoming",
                   "data": {"call_id": "rtc_1"}}).encode()


@pytest.mark.parametrize(
    "signature", ["v1,ÄÖÜ", "v1,\u2603" * 3, "v1,\x00\x01", "v1," + "é" * 44, "ünïcode"]
)
def test_non_ascii_signatures_are_a_verification_error(signature: str) -> None:
    headers = {**sign_webhook(BODY, SECRET), "webhook-signature": signature}
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(BODY, headers, SECRET, replay_store=None)


@pytest.mark.parametrize("stamp", ["١٢٣٤", "1_000", "-5", "12.5", "9" * 40])
def test_odd_timestamps_are_refused(stamp: str) -> None:
    headers = {**sign_webhook(BODY, SECRET), "webhook-timestamp": stamp}
    with pytest.raises(WebhookVerificationError, match="not Unix seconds"):
        verify_webhook(BODY, headers, SECRET, replay_store=None)


def test_the_same_signed_request_is_accepted_once() -> None:
    headers = sign_webhook(BODY, SECRET)
    assert verify_webhook(BODY, headers, SECRET).call_id == "rtc_1"
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify_webhook(BODY, headers, SECRET)
    # A fresh delivery (new id) of the same event is a new request.
    assert verify_webhook(BODY, sign_webhook(BODY, SECRET), SECRET).call_id == "rtc_1"


def test_a_refused_request_does_not_consume_its_id() -> None:
    store = MemoryReplayStore()
    headers = sign_webhook(BODY, SECRET)
    forged = {**headers, "webhook-signature": "v1,AAAA"}
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(BODY, forged, SECRET, replay_store=store)
    assert len(store) == 0
    verify_webhook(BODY, headers, SECRET, replay_store=store)
    assert len(store) == 1


def test_a_pluggable_store_is_used() -> None:
    class SharedStore:
        def __init__(self) -> None:
            self.claims: list[tuple[str, float]] = []

        def claim(self, webhook_id: str, expires_at: float) -> bool:
            seen = any(i == webhook_id for i, _ in self.claims)
            self.claims.append((webhook_id, expires_at))
            return not seen

    store = SharedStore()
    headers = sign_webhook(BODY, SECRET, timestamp=2_000_000)
    verify_webhook(BODY, headers, SECRET, now=2_000_000, replay_store=store)
    assert store.claims == [(headers["webhook-id"], 2_000_300)]
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify_webhook(BODY, headers, SECRET, now=2_000_001, replay_store=store)


def test_memory_store_is_bounded_and_forgets_expired_ids() -> None:
    store = MemoryReplayStore(max_entries=100)
    for i in range(1000):
        assert store.claim(f"wh_{i}", expires_at=1000.0 + i, now=0.0)
        assert len(store) <= 100
    assert not store.claim("wh_999", expires_at=5000.0, now=0.0)
    # Once expired, every id is forgotten.
    assert store.claim("wh_new", expires_at=10_000.0, now=9_000.0)
    assert len(store) == 1


def test_concurrent_claims_of_one_id_give_one_winner() -> None:
    store = MemoryReplayStore()
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(store.claim("wh_race", expires_at=1e12))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "realtime.call.incoming", "id": 5, "data": {}}',
        b'{"type": "realtime.call.incoming", "data": [1, 2]}',
        b'{"type": "realtime.call.incoming", "created_at": "soon"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"type": "x", "data": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b"\xff\xfe",
    ],
)
def test_signed_but_unusable_bodies_are_verification_errors(body: bytes) -> None:
    text = body.decode("utf-8", "surrogateescape")
    try:
        headers = sign_webhook(body, SECRET)
    except UnicodeDecodeError:
        headers = sign_webhook(text.encode("utf-8", "replace"), SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, SECRET, event_type=None, replay_store=None)


def test_a_released_id_is_taken_again_and_only_once() -> None:
    store = MemoryReplayStore()
    assert store.claim("wh_1", expires_at=300.0, now=0.0)
    store.release("wh_1")
    store.release("wh_unknown")  # releasing what was never claimed is harmless
    assert len(store) == 0
    assert store.claim("wh_1", expires_at=300.0, now=1.0)
    assert not store.claim("wh_1", expires_at=300.0, now=2.0)
    # The released claim's stale heap entry does not forget the new claim early.
    assert not store.claim("wh_1", expires_at=300.0, now=299.0)
