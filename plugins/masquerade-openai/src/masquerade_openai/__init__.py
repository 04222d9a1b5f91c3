"""OpenAI Realtime (GA) provider for masquerade.

Sessions over the GA websocket with tool calls, barge-in and session renewal; SIP call
control with signed webhooks; and a loopback emulator so everything runs without a key::

    import masquerade, masquerade_openai
    from masquerade_openai.emulator import OpenAIRealtimeEmulator

    with OpenAIRealtimeEmulator() as emu:
        provider = masquerade_openai.OpenAIRealtimeProvider(
            api_key=emu.api_key, base_url=emu.base_url
        )
        async with masquerade.Host(plugins=[provider], load_entrypoints=False) as host:
            request = masquerade.SessionRequest(provider="openai", tools=[lookup_order])
            async with host.session(request) as session:
                rt = masquerade_openai.realtime(session)
                await rt.send_text("call lookup_order {\\"order_id\\": \\"A1\\"}")

The provider registers itself through the ``openai`` entry point; ``realtime(session)``
returns the :class:`OpenAIRealtimeSession` of a running masquerade session (sending text
and audio, steering responses, the conversation store).
"""

from __future__ import annotations

from ._calls import CallAnswer, ClientSecret, RealtimeCalls
from ._conversation import ConversationItem, RealtimeConversation
from ._lookup import realtime, wait_realtime
from ._options import RealtimeOptions, RenewalPolicy
from ._provider import OpenAIRealtimeProvider
from ._session import OpenAIRealtimeSession
from ._webhooks import (
    MemoryReplayStore,
    ReplayStore,
    WebhookEvent,
    WebhookVerificationError,
    new_webhook_secret,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "OpenAIRealtimeProvider",
    "OpenAIRealtimeSession",
    "realtime",
    "wait_realtime",
    "RealtimeOptions",
    "RenewalPolicy",
    "RealtimeConversation",
    "ConversationItem",
    "RealtimeCalls",
    "ClientSecret",
    "CallAnswer",
    "verify_webhook",
    "sign_webhook",
    "new_webhook_secret",
    "WebhookEvent",
    "WebhookVerificationError",
    "ReplayStore",
    "MemoryReplayStore",
]
