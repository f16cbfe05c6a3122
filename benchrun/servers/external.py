"""Backend `external`: a server someone else started, at model.url. benchrun launches and
stops nothing; the server need not be llama.cpp (then it must answer /health or /v1/models)."""
from __future__ import annotations

from typing import Any, Optional

from benchrun.servers.backend import Backend, Need


class External(Backend):
    name = "external"
    own_fields = ("url",)
    launches = False
    llama_cpp = False

    def validate(self, m: Any) -> None:
        super().validate(m)
        if not m.url:
            raise ValueError("model.url is required for model=external (e.g. model.url=http://127.0.0.1:8000)")

    def health(self, m: Any) -> tuple[str, bool]:
        return "/health", False  # OpenAI-compatible servers often lack /health: any answer will do

    def served_name(self, m: Any) -> Optional[str]:
        return m.served_name or m.name  # OpenAI-compatible servers require the model's name

    def prerequisite(self, model: dict, server: dict) -> Optional[Need]:
        return Need("an external server at {}, started by you; benchrun launches nothing.",
                    str(server.get("url") or model.get("url")))
