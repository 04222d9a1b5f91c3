"""A local web page where a browser joins the demo's avatar call (real Runway only).

``masquerade demo`` with ``RUNWAYML_API_SECRET`` set starts a real Runway session. A person
joins it from a browser: this serves one page on ``127.0.0.1`` that fetches the session's
LiveKit credentials from this process (``/credentials``, once the session is ready) and
joins the room with ``livekit-client``, microphone on, avatar video shown. The
credentials never appear in the terminal; they only travel over loopback to the page::

    async with JoinPage() as page:
        print("open", page.url)
        graph = build_graph("runway", on_ready=page.publish, options={"consume": True})
"""

from __future__ import annotations

import json
from types import TracebackType

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskGroup

from ..events import JoinCredentials

__all__ = ["JoinPage", "PAGE"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>masquerade demo</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 720px; }
 video { width: 100%; background: #111; border-radius: 8px; aspect-ratio: 16 / 9; }
 button { font-size: 1rem; padding: .5rem 1rem; margin: .5rem .5rem 0 0; }
</style></head>
<body>
<h1>masquerade demo</h1>
<p id="status">Waiting for the avatar session to be ready…</p>
<video id="avatar" autoplay playsinline></video>
<div><button id="join" disabled>Join the call</button>
<button id="leave" disabled>Hang up</button></div>
<script src="https://cdn.jsdelivr.net/npm/livekit-client/dist/livekit-client.umd.min.js"></script>
<script>
const status = document.getElementById("status");
const join = document.getElementById("join");
const leave = document.getElementById("leave");
let credentials = null;
let room = null;
async function waitForCredentials() {
  for (;;) {
    const answer = await fetch("/credentials", { cache: "no-store" });
    if (answer.status === 200) return answer.json();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
waitForCredentials().then((found) => {
  credentials = found;
  status.textContent = "The avatar is ready.";
  join.disabled = false;
});
join.onclick = async () => {
  join.disabled = true;
  status.textContent = "Joining…";
  room = new LivekitClient.Room();
  room.on(LivekitClient.RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === "video") track.attach(document.getElementById("avatar"));
    else document.body.appendChild(track.attach());
  });
  room.on(LivekitClient.RoomEvent.Disconnected, () => {
    status.textContent = "The call has ended.";
    leave.disabled = true;
  });
  await room.connect(credentials.url, credentials.token);
  await room.localParticipant.setMicrophoneEnabled(true);
  status.textContent = "In the call: talk to the avatar.";
  leave.disabled = false;
};
leave.onclick = async () => {
  // END_CALL ends the Runway session as completed (instead of waiting for its limit).
  const message = new TextEncoder().encode(JSON.stringify({ type: "END_CALL" }));
  await room.localParticipant.publishData(message, { reliable: true });
  await room.disconnect();
};
</script>
</body></html>
"""


def _response(status: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class JoinPage:
    """Serves the join page on ``127.0.0.1`` (an async context manager).

    Args:
        port: the port to listen on (``0``: a free one).
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._credentials: dict[str, str] | None = None
        self._tg: TaskGroup | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def publish(self, credentials: JoinCredentials) -> None:
        """Make the session's credentials available to the page (use as ``on_ready``)."""
        self._credentials = credentials.reveal()

    async def __aenter__(self) -> JoinPage:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(listener.serve, self._handle)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            request = b""
            with anyio.move_on_after(5):
                while b"\r\n\r\n" not in request and len(request) < 8192:
                    try:
                        request += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
            parts = request.split(b"\r\n", 1)[0].split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else (b"", b"")
            if method != b"GET":
                answer = _response("405 Method Not Allowed", b"", "text/plain")
            elif path == b"/":
                answer = _response("200 OK", PAGE.encode(), "text/html; charset=utf-8")
            elif path == b"/credentials":
                if self._credentials is None:
                    answer = _response("204 No Content", b"", "application/json")
                else:
                    body = json.dumps(self._credentials).encode()
                    answer = _response("200 OK", body, "application/json")
            else:
                answer = _response("404 Not Found", b"not found", "text/plain")
            try:
                await stream.send(answer)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
