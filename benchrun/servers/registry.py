"""Every backend by its `model.backend` name. Adding one: a module with a Backend subclass,
listed here."""
from __future__ import annotations

from typing import Any, Optional

from benchrun.defaults import set_away_from_default
from benchrun.servers.backend import Backend
from benchrun.servers.command import Command
from benchrun.servers.embedded import Embedded
from benchrun.servers.external import External
from benchrun.servers.llama_server import LlamaServer

BACKENDS: dict[str, Backend] = {b.name: b for b in (Embedded(), LlamaServer(), External(), Command())}


def known_backend(name: object) -> Optional[Backend]:
    """The backend a result file names; None for a name this version does not know."""
    return BACKENDS.get(name) if isinstance(name, str) else None


def validate(m: Any) -> None:
    """A preset for m.backend, checked against every backend's part of the model schema: a
    field another backend owns, changed from its default, is refused (one line) rather than
    silently ignored; then the backend's own checks. An unknown backend is a ValueError too."""
    backend = backend_for(m.backend)
    for other in BACKENDS.values():
        for name in set_away_from_default(m, set(other.own_fields) - set(backend.own_fields)):
            raise ValueError(f"model.{name} is read by backend {other.name} only; this preset runs backend "
                             f"{backend.name} (set model.backend={other.name}, or leave model.{name} out)")
    backend.validate(m)


def backend_for(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"model.backend must be one of {', '.join(BACKENDS)}, got {name!r}") from None
