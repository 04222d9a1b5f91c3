"""The websocket proxy is looked up once per URL and proxy setting, and follows changes."""

from __future__ import annotations

import sys

import pytest
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from masquerade_openai._transport import _PROXY_VARS, proxy_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="elsewhere websockets looks itself"
)

URL = "wss://api.example.test/v1/realtime?model=gpt-realtime"


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"https_proxy": "http://proxy.test:3128"},
        {"HTTPS_PROXY": "http://upper.test:3128"},
        {"all_proxy": "socks5h://socks.test:1080"},
        {"https_proxy": "http://proxy.test:3128", "no_proxy": "api.example.test"},
        {"wss_proxy": "http://ws-only.test:8080"},
    ],
)
def test_the_proxy_is_the_one_websockets_would_pick(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(URL) == get_proxy(parse_uri(URL.split("?")[0]))


def test_a_changed_setting_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for(URL) is None
    monkeypatch.setenv("https_proxy", "http://first.test:3128")
    assert proxy_for(URL) == "http://first.test:3128"
    assert proxy_for(URL) == "http://first.test:3128"  # (remembered)
    monkeypatch.setenv("https_proxy", "http://second.test:3128")
    assert proxy_for(URL) == "http://second.test:3128"
    monkeypatch.setenv("no_proxy", "*")
    assert proxy_for(URL) is None
    monkeypatch.delenv("no_proxy")
    monkeypatch.delenv("https_proxy")
    assert proxy_for(URL) is None
