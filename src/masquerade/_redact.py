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
from contextvars import ContextVar, Token
from typing import Any

__all__ = [
    "REDACTED",
    "redact",
    "register_secret",
    "register_session_secret",
    "SecretScope",
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
# Known secrets -> how many live sessions hold them (_PERMANENT: kept for the process).
_known: dict[str, int] = {}
_PERMANENT = -1
# Known secrets are indexed by their first _PREFIX characters, then by length: masking
# looks up text[i:i+8] and, on a hit, tests one slice per *distinct length* in that bucket
# (a set lookup), so the cost does not grow with how many secrets share a prefix (LiveKit
# tokens all start "eyJhbGci"). Registering or releasing one is O(1) plus the bucket's
# distinct lengths.
_PREFIX = 8
_by_prefix: dict[str, _Bucket] = {}


class _Bucket:
    __slots__ = ("counts", "lengths")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.lengths: tuple[int, ...] = ()  # distinct lengths, longest first

    def add(self, length: int) -> None:
        counts = self.counts
        if length in counts:
            counts[length] += 1
        else:
            counts[length] = 1
            self.lengths = tuple(sorted(counts, reverse=True))

    def remove(self, length: int) -> bool:
        """Forget one secret of ``length``; whether the bucket is now empty."""
        counts = self.counts
        counts[length] -= 1
        if not counts[length]:
            del counts[length]
            self.lengths = tuple(sorted(counts, reverse=True))
        return not counts


class SecretScope:
    """The session secrets registered while a session runs, released when it ends.

    :func:`register_session_secret` adds to the scope of the running session (a context
    variable that the session's tasks and the poller's polls for it carry). A secret
    held by several scopes, or also registered for good with :func:`register_secret`,
    stays masked until its last holder lets it go.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: set[str] | None = None  # created with the first secret

    def __len__(self) -> int:
        return len(self._values) if self._values else 0

    def add(self, value: str) -> None:
        with _lock:
            values = self._values
            if values is None:
                values = self._values = set()
            elif value in values:
                return
            values.add(value)
            holders = _known.get(value)
            if holders is None:
                _known[value] = 1
                _index(value)
            elif holders != _PERMANENT:
                _known[value] = holders + 1

    def release(self) -> None:
        """Stop masking this scope's secrets that no one else holds (idempotent)."""
        with _lock:
            values, self._values = self._values, None
            for value in values or ():
                holders = _known.get(value)
                if holders is None or holders == _PERMANENT:
                    continue
                if holders > 1:
                    _known[value] = holders - 1
                    continue
                del _known[value]
                bucket = _by_prefix[value[:_PREFIX]]
                if bucket.remove(len(value)):
                    del _by_prefix[value[:_PREFIX]]


_scope: ContextVar[SecretScope | None] = ContextVar("masquerade_secret_scope", default=None)


def current_secret_scope() -> SecretScope | None:
    """The scope :func:`register_session_secret` adds to here (``None``: none)."""
    return _scope.get()


def use_secret_scope(scope: SecretScope | None) -> Token[SecretScope | None]:
    """Make ``scope`` the current one in this context; reset with ``_scope.reset``."""
    return _scope.set(scope)


def reset_secret_scope(token: Token[SecretScope | None]) -> None:
    _scope.reset(token)


def _index(value: str) -> None:
    bucket = _by_prefix.get(value[:_PREFIX])
    if bucket is None:
        bucket = _by_prefix[value[:_PREFIX]] = _Bucket()
    bucket.add(len(value))


def known_secret_count() -> int:
    """How many distinct secrets are masked by value right now."""
    return len(_known)


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
    """Remember ``value`` as a secret so it is masked everywhere from now on (API keys,
    webhook secrets: values that live as long as the process).

    Values shorter than 8 characters are ignored (masking them would mangle ordinary text).
    Use :func:`register_session_secret` for values that die with a session.
    """
    if not value or len(value) < _PREFIX:
        return
    with _lock:
        holders = _known.get(value)
        if holders == _PERMANENT:
            return
        _known[value] = _PERMANENT
        if holders is None:
            _index(value)


def register_session_secret(value: str | None) -> None:
    """Remember ``value`` as a secret of the running session (a session key, a room
    token): masked everywhere until the session ends, then forgotten, so memory and
    masking cost stay bounded however many sessions a process runs.

    Outside a session it is kept for good, like :func:`register_secret`.
    """
    if not value or len(value) < _PREFIX:
        return
    scope = _scope.get()
    if scope is None:
        register_secret(value)
    else:
        scope.add(value)


def _mask_known(text: str) -> str:
    index = _by_prefix
    known = _known
    n = len(text)
    parts: list[str] = []
    start = i = 0
    while i <= n - _PREFIX:
        bucket = index.get(text[i : i + _PREFIX])
        if bucket is not None:
            for length in bucket.lengths:
                if i + length <= n and text[i : i + length] in known:
                    parts.append(text[start:i])
                    parts.append(REDACTED)
                    i = start = i + length
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
