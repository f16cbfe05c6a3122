"""The one interface every server backend implements. A backend is one module (embedded,
llama_server, external, command) registered in servers/registry.py; code outside servers/
never asks which backend it has, it asks the backend: does it launch a process, is it
llama.cpp's server, does the preset fix its per-slot context, what does it need first."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

from benchrun.servers.tokenizer import LlamaCppTokenizer, Tokenizer


@dataclass(frozen=True)
class Need:
    """A prerequisite as plain words, `{}` marking where `literal` (a command, a URL, a build)
    goes: the report decides how to set it (Markdown code, HTML), the backend does not."""
    words: str
    literal: str = ""


class Backend:
    name: ClassVar[str]
    launches: ClassVar[bool] = True  # False: benchrun attaches to a server someone else runs
    # llama.cpp's server: /props build info, `timings` per chunk, /tokenize, llamacpp: metrics.
    # A server that is not known to be one still counts when its /props names a build.
    llama_cpp: ClassVar[bool] = True
    # The preset fields only this backend reads: its part of the model schema. Set on a preset
    # of another backend they would be silently ignored, so registry.validate refuses them.
    own_fields: ClassVar[tuple[str, ...]] = ()

    def validate(self, m: Any) -> None:
        """Raise ValueError (one line) for a preset this backend cannot run (registry.validate
        has already refused other backends' fields)."""

    def needs_model_file(self, m: Any) -> bool:
        return self.launches

    def command(self, m: Any, model_path: Optional[Path], port: int) -> list[str]:
        """The exact command line that serves preset m on `port`."""
        raise NotImplementedError(f"backend {self.name} launches nothing")

    def missing(self, m: Any) -> list[str]:
        """What this backend needs on the machine and cannot find (a binary), one line each;
        checked for every preset of a sweep before anything runs."""
        return []

    def show_command(self, m: Any, model_path: Optional[Path], port: int) -> tuple[list[str], list[str]]:
        """(argv, problems) for `benchrun presets`: rendered even when a part of it is missing."""
        return (self.command(m, model_path, port), []) if self.launches else ([], [])

    def preflight(self, m: Any, model_path: Optional[Path], port: int) -> Optional[str]:
        """Checked before launch; a note for server.log, or ServerError when it cannot start."""
        return None

    def health(self, m: Any) -> tuple[str, bool]:
        """(path, strict): the GET that says the server is up; strict wants 200, else any answer."""
        return "/health", True

    def sets_context(self, m: Any) -> bool:
        """Does the preset's ctx_size/parallel decide the per-slot context?"""
        return self.launches

    def served_name(self, m: Any) -> Optional[str]:
        """The `model` field of each request (llama.cpp ignores it)."""
        return m.served_name

    def tokenizer(self, handle: Any) -> Optional[Tokenizer]:
        """The server's tokenizer and chat template, for exact prompt sizing. Any server may be
        llama.cpp's (an external one, a command one): its endpoints are offered and probed."""
        return LlamaCppTokenizer(handle.url, handle.headers)

    def build_info(self, handle: Any) -> Optional[str]:
        """The server's build, as complete as this backend can tell (result.json server.build_info)."""
        return handle.build_info

    def prerequisite(self, model: dict, server: dict) -> Optional[Need]:
        """What the user must have beyond the model file (read from result.json); the report words it."""
        return None
