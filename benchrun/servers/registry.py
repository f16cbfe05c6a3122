"""Every backend by its `model.backend` name. Adding one: a module with a Backend subclass,
listed here."""
from __future__ import annotations

from typing import Optional

from benchrun.servers.backend import Backend
from benchrun.servers.command import Command
from benchrun.servers.embedded import Embedded
from benchrun.servers.external import External
from benchrun.servers.llama_server import LlamaServer

BACKENDS: dict[str, Backend] = {b.name: b for b in (Embedded(), LlamaServer(), External(), Command())}


def known_backend(name: object) -> Optional[Backend]:
    """The backend a result file names; None for a name this version does not know."""
    return BACKENDS.get(name) if isinstance(name, str) else None


def backend_for(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"model.backend must be one of {', '.join(BACKENDS)}, got {name!r}") from None
