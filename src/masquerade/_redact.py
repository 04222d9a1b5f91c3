"""The one redaction facility: logs, spans, reprs, exceptions and CLI output use it.

Two mechanisms work together:

* **Known secrets.** Any value passed to :func:`register_secret` (API keys read from the
  environment, session keys, LiveKit tokens, webhook secrets) is replaced wherever it
  appears, whatever its shape.
* **Shapes.** Strings that *look like* credentials (``key_<hex>``, ``sk-...``,
  ``whsec_...``, JWTs, ``Bearer <token>``) are masked even when nobody registered them.
"""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["REDACTED", "redact", "register_secret", "redact_mapping"]

REDACTED = "[redacted]"

_SHAPES = re.compile(
    r"""
    (?:key_[0-9a-fA-F]{16,})                          # Runway API keys
  | (?:sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,})   # OpenAI API keys
  | (?:whsec_[A-Za-z0-9+/=]{16,})                    # standard-webhooks secrets
  | (?:eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})  # JWTs (LiveKit tokens)
  | (?<=[Bb]earer\ )[A-Za-z0-9._~+/=\-]{8,}          # bearer tokens in headers
    """,
    re.VERBOSE,
)

_lock = threading.Lock()
_known: set[str] = set()
_known_re: re.Pattern[str] | None = None

# Field names whose values are always secret, whatever they look like.
SECRET_FIELD_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "sessionkey",
        "session_key",
        "token",
        "secret",
        "client_secret",
        "password",
        "webhook_secret",
    }
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret so it is masked everywhere from now on.

    Values shorter than 8 characters are ignored (masking them would mangle ordinary text).
    """
    global _known_re
    if not value or len(value) < 8:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        # Longest first so that a secret containing another is masked whole.
        alternatives = sorted(_known, key=len, reverse=True)
        _known_re = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """Return ``text`` with every known or credential-shaped secret masked.

    >>> redact("Authorization: Bearer key_" + "ab" * 40)
    'Authorization: Bearer [redacted]'
    """
    if not text:
        return text
    known = _known_re
    if known is not None:
        text = known.sub(REDACTED, text)
    return _SHAPES.sub(REDACTED, text)


def redact_mapping(data: Any) -> Any:
    """Deep-copy ``data`` (dicts, lists, strings) with secret fields and values masked."""
    if isinstance(data, dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and k.lower().replace("-", "_") in SECRET_FIELD_NAMES
                else redact_mapping(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact(data)
    return data
