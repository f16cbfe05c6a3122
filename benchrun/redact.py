"""Secrets (API keys) benchrun has read, and their removal from everything it writes.

A key is read from the environment variable the preset names (model.api_key_env), never from
config, so saved configs cannot hold it; a server can still echo it back (in an error body, a
log line), so every file writer and the console pass text through `redact`."""
from __future__ import annotations

import os

MASK = "***REDACTED***"
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:  # a 1-3 char "key" would mask ordinary text everywhere
        _SECRETS.add(value)


def secret_from_env(var: str) -> str | None:
    """Read an API key from env var `var` and remember it for redaction."""
    value = os.environ.get(var)
    register_secret(value)
    return value


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):  # longest first: no partial leftovers
        if s in text:
            text = text.replace(s, MASK)
    return text
