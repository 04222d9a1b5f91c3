"""Writing a plugin: a small provider, implementing the Provider and ProviderSession protocols."""

import itertools
from collections.abc import Callable
from typing import Any

import anyio
from pydantic import SecretStr

from masquerade import (
    Host,
    JoinCredentials,
    ProviderOutcome,
    ProvisioningStatus,
    Session,
    SessionRequest,
    hookimpl,
    tool,
)
from masquerade.events import ToolCall, TranscriptDone


class EchoSession:
    """One call: it repeats what the user says and calls a tool when asked to."""

    requires_polling = False  # ready as soon as it is created: the poller skips it

    def __init__(self, session_id: str, lines: list[str]) -> None:
        self.id = session_id
        self.lines = lines
        self.ended_with: str | None = None

    async def poll(self) -> ProvisioningStatus:
        return ProvisioningStatus(state="ready")

    async def join_credentials(self) -> JoinCredentials:
        return JoinCredentials(
            provider="echo",
            kind="websocket",
            public={"url": f"wss://echo.invalid/{self.id}"},
            secrets={"token": SecretStr(f"echo-token-for-{self.id}")},  # never printed
        )

    async def connect(self, session: Session) -> None:
        for turn, line in enumerate(self.lines):
            session.emit(TranscriptDone(role="user", text=line, turn=turn))
            if line.startswith("call "):
                name, _, arg = line.removeprefix("call ").partition(" ")
                result = await session.call_tool(
                    ToolCall(call_id=f"call_{turn}", name=name, arguments={"text": arg})
                )
                reply = result.output_text()  # what a model would read
            else:
                reply = line
            session.emit(TranscriptDone(role="assistant", text=f"echo: {reply}", turn=turn))
            await anyio.sleep(0.01)  # a real provider awaits its socket here

    async def end(self, reason: str) -> None:
        self.ended_with = reason  # a real provider hangs up; must be safe to call twice

    async def result(self) -> ProviderOutcome:
        return ProviderOutcome(extra={"ended_with": self.ended_with})


class EchoProvider:
    name = "echo"
    tool_dialect = "openai"  # the tool format its sessions take

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.ids = itertools.count(1)

    async def create(self, request: SessionRequest) -> EchoSession:
        return EchoSession(f"echo-{next(self.ids)}", self.lines)

    @hookimpl
    def masquerade_register_providers(self, register: Callable[[Any], None]) -> None:
        register(self)


@tool
def shout(text: str) -> str:
    """Repeat the text, louder.

    Args:
        text: What to shout.
    """
    return text.upper()


async def main() -> str:
    provider = EchoProvider(["hello", "call shout good news"])
    async with Host(plugins=[provider], load_entrypoints=False) as host:
        result = await host.run_session(SessionRequest(provider="echo", tools=[shout]))
    print(result.text)
    print(result.outcome, result.tool_calls[0].output)
    return result.text


if __name__ == "__main__":
    anyio.run(main)
