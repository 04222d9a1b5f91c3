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
