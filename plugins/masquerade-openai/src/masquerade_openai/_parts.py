"""The parts of one OpenAI Realtime session and how they are wired together.

:class:`SessionParts` builds the parts (link, turn taking, tool round trip, translation,
renewal and, for a browser frontend, its call), gives them the references they share,
binds them to the masquerade session when the call starts (each part then calls the
session's own ``emit``: no extra call layer per event) and unbinds them at the end, so
that reference counting alone frees an ended session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from masquerade import ConfigurationError

from ._browser import BrowserCall
from ._conversation import RealtimeConversation
from ._link import RealtimeLink
from ._options import RealtimeOptions
from ._renewal import Renewal
from ._shared import noop_emit
from ._tools import ToolRoundTrip
from ._translate import EventTranslator
from ._turns import TurnTaking

if TYPE_CHECKING:
    from masquerade import Session

    from ._calls import RealtimeCalls

__all__ = ["SessionParts"]


def _no_tool(call: Mapping[str, Any]) -> None:
    return None


class SessionParts:
    """Every part of one session, wired."""

    # Slots: thousands of idle sessions each hold one of these.
    __slots__ = (
        "browser", "link", "renewal", "tools", "translator", "turns",
    )

    def __init__(
        self,
        *,
        provider: str,
        options: RealtimeOptions,
        url: str,
        headers: Mapping[str, str],
        calls: RealtimeCalls | None,
        conversation: RealtimeConversation,
    ) -> None:
        self.link = link = RealtimeLink(provider=provider, options=options, url=url,
                                        headers=headers)
        self.turns = turns = TurnTaking(options, conversation, link.outbox)
        self.tools = tools = ToolRoundTrip(link, turns, conversation)
        turns.start_tool = tools.start
        self.translator = EventTranslator(options, link, conversation, turns, tools)
        self.renewal = Renewal(
            provider=provider, options=options, call_id=options.call_id, link=link,
            turns=turns, translator=self.translator, conversation=conversation,
        )
        self.browser: BrowserCall | None = None
        if options.transport == "webrtc":
            if calls is None:
                raise ConfigurationError("a webrtc session needs a RealtimeCalls client")
            self.browser = BrowserCall(options=options, link=link, renewal=self.renewal,
                                       calls=calls)

    def bind(self, session: Session) -> Callable[[Any], Any]:
        """Connect every part to the running masquerade session; returns its ``emit``."""
        self.tools.session = self.translator.session = session
        emit = session.emit
        self.turns.emit = self.tools.emit = self.translator.emit = emit
        self.renewal.emit = emit
        return emit

    def unbind(self) -> None:
        """Drop every reference into the ended masquerade session and between the parts;
        the conversation and the counters stay readable."""
        self.tools.session = self.translator.session = None
        self.turns.emit = self.tools.emit = self.translator.emit = noop_emit
        self.renewal.emit = noop_emit
        self.turns.start_tool = _no_tool
        self.translator.handlers = {}
