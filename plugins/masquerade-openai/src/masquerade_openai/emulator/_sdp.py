"""The emulator's SDP answer: syntactically valid, matching the offer, carrying no media.

The emulator does not run WebRTC. It answers an offer the way the service's answer looks
(one section per offered section, same ``mid`` and order, BUNDLE, ICE credentials, a
DTLS fingerprint, Opus for audio, SCTP for the data channel), so a browser accepts it with
``setRemoteDescription``; no ICE candidate is offered, so no media ever flows.
"""

from __future__ import annotations

import secrets
import time

from .._sdp import MediaSection, media_sections

__all__ = ["answer_for", "SAMPLE_OFFER"]

#: An SDP offer as a browser's ``RTCPeerConnection.createOffer()`` makes it (Opus audio and
#: the events data channel), for code that exercises a WebRTC call without a browser.
SAMPLE_OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0 1", "a=msid-semantic: WMS",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd", "a=ice-pwd:0123456789abcdef01234567",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0",
    "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=mid:1",
    "a=sctp-port:5000",
]) + "\r\n"


def _fingerprint() -> str:
    return ":".join(f"{b:02X}" for b in secrets.token_bytes(32))


def answer_for(offer: str) -> str:
    """An SDP answer to ``offer`` (which :func:`.._sdp.check_sdp` accepted)."""
    ufrag = secrets.token_hex(4)
    pwd = secrets.token_hex(12)
    fingerprint = _fingerprint()
    sections = media_sections(offer)
    mids = [m.attribute("mid") or str(i) for i, m in enumerate(sections)]
    lines = [
        "v=0",
        f"o=- {int(time.time() * 1000)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {' '.join(mids)}",
        "a=msid-semantic: WMS",
    ]
    for section, mid in zip(sections, mids, strict=True):
        common = [
            "c=IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            f"a=mid:{mid}",
        ]
        if section.kind == "application":
            lines.append(f"m=application 9 {section.protocol} webrtc-datachannel")
            lines += common
            lines += ["a=sctp-port:5000", "a=max-message-size:262144"]
            continue
        payload = _opus(section.attributes) if section.kind == "audio" else None
        if payload is None:  # nothing we could speak: the section is refused (port 0)
            lines.append(f"m={section.kind} 0 {section.protocol} {' '.join(section.formats[:1])}")
            lines += ["c=IN IP4 0.0.0.0", f"a=mid:{mid}", "a=inactive"]
            continue
        lines.append(f"m=audio 9 {section.protocol} {payload}")
        lines += common
        lines += [
            "a=rtcp:9 IN IP4 0.0.0.0",
            _direction(section),
            "a=rtcp-mux",
            f"a=rtpmap:{payload} opus/48000/2",
            f"a=fmtp:{payload} minptime=10;useinbandfec=1",
        ]
    return "\r\n".join(lines) + "\r\n"


def _opus(attributes: list[str]) -> str | None:
    for line in attributes:
        if line.startswith("rtpmap:") and " opus/" in line.lower():
            return line[len("rtpmap:") :].split()[0]
    return None


def _direction(section: MediaSection) -> str:
    """The answer's direction for an offered one (the mirror image)."""
    if section.attribute("recvonly") is not None:
        return "a=sendonly"
    if section.attribute("sendonly") is not None:
        return "a=recvonly"
    if section.attribute("inactive") is not None:
        return "a=inactive"
    return "a=sendrecv"
