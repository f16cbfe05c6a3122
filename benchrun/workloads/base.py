"""The workload interface."""
from __future__ import annotations

from typing import Any

from ..engine import Conversation


class Workload:
    """Builds the conversations one measured repeat sends, plus a warm-up request."""

    def __init__(self, cfg: Any, concurrency: int):
        self.cfg = cfg
        self.concurrency = concurrency

    def prepare(self, url: str, headers: dict | None = None) -> None:
        """Called once the server is up (e.g. to calibrate prompts with its tokenizer)."""

    def conversations(self, repeat: int) -> list[Conversation]:
        raise NotImplementedError

    def warmup(self) -> list[Conversation]:
        """Conversations sent before measuring; their records are kept but excluded."""
        return self.conversations(repeat=-1)[:1]

    def describe(self) -> dict:
        """Settings that go into result.json's `workload`."""
        from omegaconf import OmegaConf

        d = OmegaConf.to_container(self.cfg, resolve=True) if OmegaConf.is_config(self.cfg) else dict(self.cfg)
        return {k: v for k, v in d.items() if v not in (None, [], {})}

    def evaluate(self, records: list) -> list[dict]:
        """Per-task outcomes (quality checks) for result.json's `tasks`; none by default."""
        return []
