"""The ``openai`` provider: starts GA Realtime sessions for masquerade.

Installed through the ``openai`` entry point (group ``masquerade``), it reads
``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``) when a session starts. Register your own
instance to change defaults::

    provider = OpenAIRealtimeProvider(voice="marin", renewal={"max_reconnects": 3})
    async with Host(plugins=[provider]) as host:     # replaces the entry-point default
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masquerade import SessionRequest, hookimpl
from masquerade.session import current_session

from ._calls import RealtimeCalls
from ._options import RealtimeOptions, resolve_api_key, websocket_url
from ._session import OpenAIRealtimeSession

__all__ = ["OpenAIRealtimeProvider"]


class OpenAIRealtimeProvider:
    """Creates :class:`OpenAIRealtimeSession` objects (provider name ``"openai"``).

    Args:
        api_key: the API key (default: ``OPENAI_API_KEY`` at session start).
        base_url: the REST base URL (default: ``OPENAI_BASE_URL`` or the public API).
        name: the provider name requests select.
        **defaults: default :class:`RealtimeOptions` for every session (``model``,
            ``voice``, ``turn_detection``, ``renewal``...); a request's ``options`` win.
    """

    tool_dialect = "openai"
    requires_polling = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        name: str = "openai",
        **defaults: Any,
    ) -> None:
        self.name = name
        layer: dict[str, Any] = dict(defaults)
        if api_key is not None:
            layer["api_key"] = api_key
        if base_url is not None:
            layer["base_url"] = base_url
        self.defaults = RealtimeOptions.build(layer)  # fails early on a bad option
        self._layer = layer
        # Validated options by request content: most sessions of a provider ask for the
        # same ones, and the options are immutable, so they are built once and shared.
        self._options: dict[Any, RealtimeOptions] = {}
        self._headers: dict[tuple[str, int], tuple[RealtimeOptions, dict[str, str]]] = {}

    @property
    def __name__(self) -> str:  # the plugin name when registered without one
        # The provider's own name, so that an instance passed to Host(plugins=[...])
        # takes the place of the installed entry-point plugin of the same name.
        return self.name

    def __repr__(self) -> str:
        return f"<OpenAIRealtimeProvider {self.name!r}>"

    def options_for(self, request: SessionRequest) -> RealtimeOptions:
        """The options of one session: provider defaults < request fields < options."""
        key = _frozen((request.model or None, request.options))
        if key is not None:
            found = self._options.get(key)
            if found is not None:
                return found
        from_request: dict[str, Any] = {}
        if request.model:
            from_request["model"] = request.model
        options = RealtimeOptions.build(self._layer, from_request, request.options)
        if key is not None:
            if len(self._options) >= 256:  # bounded: requests that all differ
                self._options.clear()
            self._options[key] = options
        return options

    def calls(self, options: RealtimeOptions | None = None) -> RealtimeCalls:
        """A :class:`RealtimeCalls` client with this provider's key and base URL."""
        opts = options or self.defaults
        return RealtimeCalls(
            api_key=resolve_api_key(opts), base_url=opts.resolved_base_url, provider=self.name
        )

    async def create(self, request: SessionRequest) -> OpenAIRealtimeSession:
        """Open the websocket and configure the session; it is ready when this returns.

        A browser-frontend session (``transport="webrtc"``) opens nothing yet: it waits
        for the browser's offer (:meth:`OpenAIRealtimeSession.answer_offer`)."""
        options = self.options_for(request)
        key = resolve_api_key(options)
        headers = self._headers_for(key, options)
        webrtc = options.transport == "webrtc"
        session = OpenAIRealtimeSession(
            provider=self.name,
            options=options,
            request=request,
            url=websocket_url(options),
            headers=headers,
            calls=self.calls(options) if options.call_id or webrtc else None,
        )
        # On a call (SIP or a browser's WebRTC) the tools are part of the first
        # configuration, so the caller never meets an agent without them; a websocket
        # session declares them once connected.
        on_call = webrtc or options.call_id is not None
        await session.open(self._tool_schemas() if on_call else None)
        return session

    async def resume(
        self, provider_session_id: str, request: SessionRequest
    ) -> OpenAIRealtimeSession:
        """Re-attach to the SIP call of ``request`` (its ``call_id``) after the process
        that ran it died: a new sideband websocket on the same live call, no new call.

        A plain websocket session lives only as long as its socket, so it cannot be
        re-attached: that raises :class:`NotImplementedError` (durable runs then fail the
        node with ``worker_lost`` instead of placing a second call).
        """
        if self.options_for(request).call_id is None:
            raise NotImplementedError(
                f"the OpenAI Realtime session {provider_session_id} was a websocket session, "
                "which ends with its socket"
            )
        return await self.create(request)

    def _headers_for(self, key: str, options: RealtimeOptions) -> dict[str, str]:
        """The handshake headers, one dict shared by the sessions of the same key and
        options (read, never changed)."""
        cache_key = (key, id(options))
        found = self._headers.get(cache_key)
        if found is not None and found[0] is options:
            return found[1]
        headers = {"Authorization": f"Bearer {key}", **options.headers}
        if len(self._headers) >= 256:
            self._headers.clear()
        self._headers[cache_key] = (options, headers)
        return headers

    def _tool_schemas(self) -> list[dict[str, Any]] | None:
        """The session's tools in the OpenAI dialect (``None`` outside a masquerade
        session: they are declared once connected)."""
        session = current_session()
        if session is None:
            return None
        return [session.host.tool_schema(t, self.tool_dialect) for t in session.tools.values()]

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)


_SCALARS = (str, int, float, bool, type(None))


def _frozen(value: Any) -> Any:
    """A hashable key equal for equal plain data (types included, so ``1`` and ``True``
    differ), or ``None`` when ``value`` holds anything else (then nothing is cached)."""
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is dict:
        items = []
        for k, v in value.items():
            frozen = _frozen(v)
            if type(k) is not str or frozen is None:
                return None
            items.append((k, frozen))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        parts = []
        for v in value:
            frozen = _frozen(v)
            if frozen is None:
                return None
            parts.append(frozen)
        return (kind, tuple(parts))
    return None
