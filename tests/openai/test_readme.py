"""The plugin README's example runs as written, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "plugins" / "masquerade-openai" / "README.md"


@pytest.mark.anyio
async def test_readme_voice_session_example(capsys: pytest.CaptureFixture[str]) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)[0]
    body, _, last = code.rstrip().rpartition("\n")
    assert last == "anyio.run(main)"
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(body, str(README), "exec"), namespace)
    await namespace["main"]()  # type: ignore[operator]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        'lookup_order returned {"order_id": "A1001", "status": "shipped"}',
        "turn_detected",
        "Earlier you said: one more thing",
        "completed ['lookup_order']",
    ]
