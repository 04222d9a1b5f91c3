"""The one redaction facility: logs, spans, reprs, exceptions and CLI output use it.

Two mechanisms work together:

* **Known secrets.** Any value passed to :func:`register_secret` (API keys read from the
  environment, session keys, LiveKit tokens, webhook secrets) is replaced wherever it
  appears, whatever its shape.
* **Shapes.** Strings that *look like* credentials (``key_<hex>``, ``sk-...``,
  ``whsec_...``, JWTs, ``Bearer <token>``, ``Authorization:``/``x-api-key:`` header
  values, ``?key=``/``?token=`` query parameters) are masked even when nobody registered
  them.

Log records are covered by :class:`RedactingFilter`. :func:`install_log_redaction` (run
when :mod:`masquerade` is imported) puts it on the loggers of the libraries masquerade
connects with (``websockets`` logs every handshake header, ``Authorization`` included, at
DEBUG) and on masquerade's own loggers; add it to your own handlers to cover every
logger::

    handler = logging.StreamHandler()
    handler.addFilter(masquerade.RedactingFilter())
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = [
    "REDACTED",
    "redact",
    "register_secret",
    "redact_mapping",
    "is_secret_field",
    "RedactingFilter",
    "install_log_redaction",
    "REDACTED_LOGGERS",
]

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

# Credential-carrying header values ("Authorization: Basic ...", "x-api-key: ...") and
# query parameters ("?key=...", "&token=...") whatever the credential looks like. Group 1
# (the name and separator) is kept so that a reader still sees what was masked.
_CONTEXTUAL = re.compile(
    r"""
    (\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest)\s+)?
     |\b(?:x-)?api-key["']?\s*[:=]\s*["']?
     |\bopenai-api-key["']?\s*[:=]\s*["']?
     |[?&](?:key|api_key|apikey|token|access_token|session_key|sessionKey|client_secret|secret)=
    )
    (?!\[redacted\])[A-Za-z0-9._~+/=\-]{8,}
    """,
    re.VERBOSE | re.IGNORECASE,
)

_lock = threading.Lock()
_known: set[str] = set()
# Known secrets are indexed by their first _PREFIX characters. Registering one is O(1),
# and masking scans the text once, whatever the number of secrets (a combined regex of
# every secret had to be recompiled per registration: minutes of CPU for 1,000 sessions).
_PREFIX = 8
_by_prefix: dict[str, list[str]] = {}

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
        "access_token",
        "refresh_token",
        "x_api_key",
        "openai_api_key",
        "proxy_authorization",
        "cookie",
        "set_cookie",
    }
)
# ...and so does any field whose name ends like this (``livekit_token``, ``roomToken``,
# ``signing_secret``, ``sessionKey``...).
_SECRET_SUFFIXES = ("token", "secret", "sessionkey", "session_key", "api_key", "apikey", "password")


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret so it is masked everywhere from now on.

    Values shorter than 8 characters are ignored (masking them would mangle ordinary text).
    """
    if not value or len(value) < _PREFIX:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        same_start = _by_prefix.setdefault(value[:_PREFIX], [])
        same_start.append(value)
        same_start.sort(key=len, reverse=True)  # a secret containing another is masked whole


def _mask_known(text: str) -> str:
    index = _by_prefix
    n = len(text)
    parts: list[str] = []
    start = i = 0
    while i <= n - _PREFIX:
        candidates = index.get(text[i : i + _PREFIX])
        if candidates is not None:
            for secret in candidates:
                if text.startswith(secret, i):
                    parts.append(text[start:i])
                    parts.append(REDACTED)
                    i = start = i + len(secret)
                    break
            else:
                i += 1
        else:
            i += 1
    if not parts:
        return text
    parts.append(text[start:])
    return "".join(parts)


def redact(text: str) -> str:
    """Return ``text`` with every known or credential-shaped secret masked.

    >>> redact("Authorization: Bearer key_" + "ab" * 40)
    'Authorization: Bearer [redacted]'
    """
    if not text:
        return text
    if _by_prefix:
        text = _mask_known(text)
    text = _SHAPES.sub(REDACTED, text)
    return _CONTEXTUAL.sub(_keep_name, text)


def _keep_name(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def is_secret_field(name: str) -> bool:
    """Whether a field (header, JSON key, attribute) of this name always holds a secret.

    >>> is_secret_field("sessionKey"), is_secret_field("livekit_token"), is_secret_field("turn")
    (True, True, False)
    """
    key = name.lower().replace("-", "_")
    return key in SECRET_FIELD_NAMES or key.endswith(_SECRET_SUFFIXES)


def redact_mapping(data: Any) -> Any:
    """Deep-copy ``data`` (dicts, lists, strings) with secret fields and values masked."""
    if isinstance(data, dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and is_secret_field(k) and v is not None
                else redact_mapping(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_mapping(v) for v in data]
    if isinstance(data, str):
        return redact(data)
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record before any handler formats it.

    It renders the message (``msg % args``) once and redacts it, and does the same for a
    record's exception and stack text, so neither a format argument nor a traceback can
    carry a key into a log. It never drops a record. Put it on a handler to cover
    everything that handler writes::

        handler.addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's error to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()

#: Loggers :func:`install_log_redaction` filters. ``websockets.client`` logs every
#: handshake header at DEBUG; a logger's filters only see records created on that very
#: logger, so each name is listed rather than only the parents.
REDACTED_LOGGERS: tuple[str, ...] = (
    "websockets",
    "websockets.client",
    "websockets.server",
    "httpx",
    "httpcore",
    "livekit",
    "masquerade",
    "masquerade.host",
    "masquerade.session",
    "masquerade.poller",
    "masquerade.tools",
    "masquerade.graph",
    "masquerade.tracing",
)

_installed = RedactingFilter()


def install_log_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    """Put the shared :class:`RedactingFilter` on ``names`` (idempotent, cheap)."""
    for name in names:
        log = logging.getLogger(name)
        if _installed not in log.filters:
            log.addFilter(_installed)
