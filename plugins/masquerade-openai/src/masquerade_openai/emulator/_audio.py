"""The audio the emulated model speaks: one fixed 100 ms chunk, repeated."""

from __future__ import annotations

import base64

__all__ = ["AUDIO_CHUNK", "AUDIO_CHUNK_B64", "AUDIO_CHUNK_MS"]

#: 100 ms of 24 kHz PCM16 (4800 bytes), noise-like so it is as large on the wire as speech.
AUDIO_CHUNK = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(4800))
AUDIO_CHUNK_B64 = base64.b64encode(AUDIO_CHUNK).decode()
AUDIO_CHUNK_MS = 100
