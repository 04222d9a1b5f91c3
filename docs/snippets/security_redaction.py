"""Security: secrets are masked in logs, reprs, errors and JSON, wherever they come from."""

import io
import json
import logging

import anyio

import masquerade
from masquerade import JsonFormatter, RedactingFilter, redact, register_secret


async def main() -> list[str]:
    api_key = "my-own-service-credential-7f3a9c"  # no known shape: register it
    register_secret(api_key)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("myapp")
    log.addHandler(handler)
    log.propagate = False
    log.warning("calling the service with %s", api_key, extra={"token": "abc123456789"})
    log.removeHandler(handler)

    error = masquerade.ProviderError(f"401 for key {api_key}", status_code=401)
    lines = [
        redact(f"Authorization: Bearer {api_key}"),
        redact("OpenAI key sk-proj-" + "x" * 24 + " and Runway key key_" + "ab" * 32),
        json.loads(stream.getvalue())["message"],
        json.loads(stream.getvalue())["token"],
        str(error),
    ]
    print("\n".join(lines))
    assert all(api_key not in line for line in lines)
    return lines


if __name__ == "__main__":
    anyio.run(main)
