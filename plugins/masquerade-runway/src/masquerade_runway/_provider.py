"""The ``runway`` provider: Runway ``gwm1_avatars`` realtime sessions.

::

    import masquerade
    from masquerade_runway import RunwayProvider

    # Installed, the plugin registers RunwayProvider() (configured from RUNWAYML_API_SECRET
    # and RUNWAYML_BASE_URL). To configure it in code, pass your own instance: it takes the
    # place of the installed one.
    provider = RunwayProvider(api_key="key_...", base_url="https://api.dev.runwayml.com")
    async with masquerade.Host(plugins=[provider]) as host:
        result = await host.run_session(
            masquerade.SessionRequest(provider="runway", avatar="cooking-teacher")
        )

Session options (``SessionRequest(options={...})``):

* ``consume=True`` -- hand the frontend LiveKit ``{url, token, roomName}`` (consume is
  called once) instead of ``{sessionId, sessionKey}`` for Runway's browser SDK;
* ``room="livekit" | "emulator"`` -- the room implementation the backend joins with;
* ``backend=False`` -- do not join the room (no backend tools, transcripts or client
  events): only follow the session's status until it ends;
* ``avatar_type="preset" | "custom"`` -- how to read ``avatar``;
* ``integration=LiveKitIntegration(...) | ElevenLabsIntegration(...)`` -- your own agent
  speaks through the avatar (no tools, no backend);
* ``long_call="none" | "end" | "continue"`` (with ``call_cap``, ``cap_margin``,
  ``continue_script``) -- what happens before Runway's cap on a call's length (see
  :mod:`masquerade_runway._long_call`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import anyio

from masquerade import Host, SessionRequest, hookimpl
from masquerade.session import current_session

from ._client import RunwayClient
from ._long_call import LongCallPolicy
from ._request import build_session_body, session_integration
from ._session import RunwaySession

__all__ = ["RunwayProvider"]


class RunwayProvider:
    """Creates Runway realtime sessions (implements :class:`masquerade.Provider`).

    Args:
        api_key: the API key (default: ``RUNWAYML_API_SECRET``, read when a session is
            created, so constructing a provider never fails).
        base_url: the API base (default: ``RUNWAYML_BASE_URL``, else Runway's).
        room: the room implementation to join with, ``"livekit"`` or ``"emulator"``
            (default: what ``connect_backend`` advertises, else LiveKit).
        name: the provider name sessions select (``"runway"``); also the plugin name, so
            an instance passed to ``Host(plugins=[...])`` replaces the installed plugin.
        max_retries: retries of failed requests (never of a create that was sent).
        end_grace: seconds to wait for the session to end after ``END_CALL`` before
            cancelling it with ``DELETE``.
        result_wait: seconds to wait for the final status and the final transcript.
        monitor_interval: seconds between status checks with ``backend=False``.
        client_options: more keyword arguments for :class:`RunwayClient`
            (``timeout``, ``retry_base``, ``transport``...).
    """

    tool_dialect = "runway"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        room: Literal["livekit", "emulator"] | None = None,
        name: str = "runway",
        max_retries: int = 2,
        end_grace: float = 5.0,
        result_wait: float = 10.0,
        monitor_interval: float = 1.0,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        if room not in (None, "livekit", "emulator"):
            raise ValueError(f"room must be 'livekit' or 'emulator', not {room!r}")
        self.name = name
        self.base_url = base_url
        self.room = room
        self.max_retries = max_retries
        self.end_grace = end_grace
        self.result_wait = result_wait
        self.monitor_interval = monitor_interval
        self._api_key = api_key
        self._client_options = dict(client_options or {})
        self._client: RunwayClient | None = None
        self._users = 0
        self._fallback_host: Host | None = None
        #: The latest sessions this provider created (for tests and introspection).
        self.sessions: deque[RunwaySession] = deque(maxlen=256)

    @property
    def __name__(self) -> str:  # the plugin name when registered without one
        return self.name

    def __repr__(self) -> str:
        return f"<RunwayProvider name={self.name!r} base_url={self.base_url!r} room={self.room!r}>"

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)

    # ------------------------------------------------------------------ client sharing
    def client(self) -> RunwayClient:
        """A new :class:`RunwayClient` configured like this provider."""
        return RunwayClient(
            self._api_key,
            base_url=self.base_url,
            max_retries=self.max_retries,
            **self._client_options,
        )

    def _acquire_client(self) -> RunwayClient:
        # Sessions share one connection pool; it is closed when the last session is done,
        # so that it never outlives the event loop that opened it.
        if self._client is None:
            self._client = self.client()
        self._users += 1
        return self._client

    async def release_client(self, client: RunwayClient) -> None:
        """Hand back a client from :meth:`_acquire_client` (a session calls it when done)."""
        if client is not self._client:
            await client.aclose()
            return
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            self._client = None
            with anyio.CancelScope(shield=True):
                await client.aclose()

    # ------------------------------------------------------------------ sessions
    def _tool_schemas(self, request: SessionRequest) -> list[dict[str, Any]]:
        session = current_session()
        if session is not None:
            host, tools = session.host, list(session.tools.values())
        else:
            # Called outside a masquerade session: describe the request's own tools with
            # the built-in tool schemas.
            if self._fallback_host is None:
                self._fallback_host = Host(load_entrypoints=False)
            host, tools = self._fallback_host, list(request.tools)
        return [host.tool_schema(tool, self.tool_dialect) for tool in tools]

    async def create(self, request: SessionRequest) -> RunwaySession:
        """``POST /v1/realtime_sessions`` for ``request`` (validated first; never resent)."""
        tools = self._tool_schemas(request)
        if not request.tools and session_integration(request) is not None:
            tools = []  # tools every session gets (from plugins) stay with masquerade
        body = build_session_body(request, tools)
        LongCallPolicy.from_options(request.options)  # refuse a bad policy before creating
        client = self._acquire_client()
        try:
            session_id = await client.create_realtime_session(body)
        except BaseException:
            await self.release_client(client)
            raise
        created = RunwaySession(self, client, session_id, request, tools)
        self.sessions.append(created)
        return created

    async def resume(self, provider_session_id: str, request: SessionRequest) -> RunwaySession:
        """Re-attach to session ``provider_session_id`` (created earlier for ``request``,
        maybe by another process); never creates one.

        A session still provisioning is polled until ready; a ready or running one is
        joined again with ``connect_backend`` (backend tools are answered from here on,
        and Runway still ends it at its original ``maxDuration``); one that has ended is
        only collected: its result is read from the conversation endpoint.
        """
        tools = self._tool_schemas(request)
        client = self._acquire_client()
        session = RunwaySession(self, client, provider_session_id, request, tools)
        session.resumed = True
        try:
            status = await session._retrieve()
        except BaseException:
            await self.release_client(client)
            raise
        if status.terminal:
            session.requires_polling = False  # over: nothing to wait for, only collect
        self.sessions.append(session)
        return session
