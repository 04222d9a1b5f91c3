"""The shared redaction facility and that errors never carry secrets."""

from __future__ import annotations

from masquerade import ProviderError, redact, register_secret


def test_credential_shapes_are_masked() -> None:
    runway = "key_" + "a1" * 64
    openai = "sk-proj-" + "A" * 40
    webhook = "whsec_" + "B" * 32
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    text = f"k={runway} o={openai} w={webhook} t={jwt} Authorization: Bearer abcdefghijkl"
    masked = redact(text)
    for secret in (runway, openai, webhook, jwt, "abcdefghijkl"):
        assert secret not in masked
    assert masked.count("[redacted]") == 5


def test_registered_secrets_are_masked_whatever_their_shape() -> None:
    register_secret("plain-looking-value-123")
    assert redact("the key plain-looking-value-123 leaked") == "the key [redacted] leaked"


def test_errors_redact_their_message() -> None:
    secret = "key_" + "f" * 128
    err = ProviderError(f"401 for {secret}", status_code=401)
    assert secret not in str(err) and secret not in repr(err)
    assert "retrying will not help" in str(err)


def test_many_secrets_sharing_prefixes_are_all_masked() -> None:
    short = "sharedprefix-AAAA"
    longer = short + "-and-more"  # contains the shorter one: masked whole
    others = [f"sharedprefix-{i:04d}" for i in range(300)]
    for value in (short, longer, *others):
        register_secret(value)
    text = f"a={longer} b={short} c={others[123]} d=sharedprefix-none"
    masked = redact(text)
    assert masked == "a=[redacted] b=[redacted] c=[redacted] d=sharedprefix-none"


def test_session_secrets_are_released_but_shared_and_permanent_ones_stay() -> None:
    from masquerade._redact import (
        SecretScope,
        known_secret_count,
        register_session_secret,
        reset_secret_scope,
        use_secret_scope,
    )

    permanent = "permanent-secret-value-0001"
    register_secret(permanent)
    first, second = SecretScope(), SecretScope()
    before = known_secret_count()
    token = use_secret_scope(first)
    try:
        register_session_secret("room-token-of-session-one")
        register_session_secret("shared-by-two-sessions-xyz")
        register_session_secret(permanent)  # already kept for good: stays
    finally:
        reset_secret_scope(token)
    token = use_secret_scope(second)
    try:
        register_session_secret("shared-by-two-sessions-xyz")
    finally:
        reset_secret_scope(token)
    assert known_secret_count() == before + 2
    first.release()
    text = "room-token-of-session-one shared-by-two-sessions-xyz permanent-secret-value-0001"
    assert redact(text) == "room-token-of-session-one [redacted] [redacted]"
    second.release()
    second.release()  # idempotent
    assert redact(text) == "room-token-of-session-one shared-by-two-sessions-xyz [redacted]"
    assert known_secret_count() == before


def test_outside_a_session_a_session_secret_is_kept_for_good() -> None:
    from masquerade import register_session_secret

    register_session_secret("no-scope-session-secret-1")
    assert redact("x no-scope-session-secret-1") == "x [redacted]"


def test_masking_work_does_not_grow_with_secrets_sharing_a_prefix() -> None:
    # Structural: the index holds one entry per distinct length under a shared prefix,
    # however many secrets share it (LiveKit tokens all start "eyJhbGci").
    from masquerade._redact import SecretScope, _by_prefix, reset_secret_scope, use_secret_scope

    scope = SecretScope()
    token = use_secret_scope(scope)
    try:
        from masquerade import register_session_secret

        for i in range(5000):
            register_session_secret(f"eyJhbGciOiJIUzI1NiJ9.tok{i:06d}")
    finally:
        reset_secret_scope(token)
    bucket = _by_prefix["eyJhbGci"]
    assert len(bucket.lengths) == 1
    line = "joined with eyJhbGciOiJIUzI1NiJ9.tok004321 and eyJhbGciOiJIUzI1NiJ9.tok999999"
    assert redact(line) == "joined with [redacted] and eyJhbGciOiJIUzI1NiJ9.tok999999"
    scope.release()
    assert "eyJhbGci" not in _by_prefix
    assert redact(line) == line
