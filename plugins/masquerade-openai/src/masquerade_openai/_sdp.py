"""Checking and reading SDP (RFC 8866) offers and answers, as far as masquerade needs to.

masquerade never handles media: it passes a browser's offer to the Realtime API and the
answer back. It checks that both look like SDP (so a wrong body fails with a clear error,
not deep inside the browser) and reads the media sections, which the emulator needs to
write a matching answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masquerade import ConfigurationError, ProviderError

__all__ = ["MAX_SDP_BYTES", "MediaSection", "check_sdp", "media_sections"]

#: Largest SDP offer or answer accepted (real ones are a few kilobytes).
MAX_SDP_BYTES = 64 * 1024


@dataclass
class MediaSection:
    """One ``m=`` section: its media kind, transport protocol, formats and attributes."""

    kind: str
    protocol: str
    formats: list[str]
    attributes: list[str] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value`` (``""`` for a flag), else ``None``."""
        for line in self.attributes:
            key, _, value = line.partition(":")
            if key == name:
                return value
        return None


def check_sdp(text: str, kind: str, *, provider: str | None = None) -> None:
    """Raise a clear error unless ``text`` looks like an SDP ``kind`` (offer or answer).

    An offer is the caller's input (:class:`~masquerade.ConfigurationError`); an answer
    comes from the provider (:class:`~masquerade.ProviderError`, with ``provider``).
    """
    problem = None
    if not isinstance(text, str) or not text.strip():
        problem = "it is empty"
    elif len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        problem = f"it is larger than {MAX_SDP_BYTES} bytes"
    elif not text.lstrip().startswith("v=0"):
        problem = "it does not start with 'v=0'"
    elif not media_sections(text):
        problem = "it has no media section (m=)"
    if problem is None:
        return
    message = f"the SDP {kind} is not valid SDP: {problem}"
    if provider is not None:
        raise ProviderError(message, provider=provider)
    raise ConfigurationError(
        message,
        hint="pass the browser's RTCPeerConnection offer (pc.localDescription.sdp) as is",
    )


def media_sections(text: str) -> list[MediaSection]:
    """The ``m=`` sections of an SDP text, with their ``a=`` lines."""
    sections: list[MediaSection] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) >= 3:
                sections.append(MediaSection(parts[0], parts[2], parts[3:]))
        elif line.startswith("a=") and sections:
            sections[-1].attributes.append(line[2:])
    return sections
