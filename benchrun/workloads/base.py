"""The workload interface: conversations to send, a warm-up, the settings to record, per-task
outcomes, and the worst-case context one request can need (checked before launch)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Optional

from benchrun.config import WorkloadConfig, plain
from benchrun.load.client import RequestSpec
from benchrun.load.engine import Conversation, Requests
from benchrun.servers.tokenizer import Tokenizer


def fixed(specs: Iterable[RequestSpec]) -> Conversation:
    """A conversation whose requests are known up front (nothing reads the replies)."""
    return Requests(specs)


class Workload:
    """Builds the conversations one measured repeat sends, plus a warm-up request."""

    # The workload fields only this kind reads (its part of the schema); the rest are common.
    own_fields: ClassVar[tuple[str, ...]] = ()
    # The server's slots (model.parallel), set by the job: agents beyond them evict each other's cache.
    slots: Optional[int] = None

    def __init__(self, cfg: WorkloadConfig, concurrency: int):
        self.cfg = cfg
        self.concurrency = concurrency

    def prepare(self, tokenizer: Optional[Tokenizer]) -> None:
        """Called once the server is up, with the tokenizer its backend offers (or None), e.g.
        to size prompts exactly."""

    def conversations(self, repeat: int) -> list[Conversation]:
        raise NotImplementedError

    def planned_requests(self) -> int | None:
        """Requests one measured repeat sends (for progress), or None when not known up front."""
        return None

    def warmup(self) -> list[Conversation]:
        """Conversations sent before measuring; their records are kept but excluded."""
        return self.conversations(repeat=-1)[:1]

    def context_need(self, bytes_per_token: float = 3.0):
        """The largest prompt + max_tokens of any request at this concurrency, as a
        context.ContextNeed, or None when unknown. Text the workload cannot tokenize yet is
        estimated at `bytes_per_token` (context.bytes_per_token_for)."""
        return None

    def describe(self) -> dict:
        """Settings that go into result.json's `workload`."""
        d = dict(plain(self.cfg))
        return {k: v for k, v in d.items() if v not in (None, [], {})}

    def evaluate(self, records: list) -> list[dict]:
        """Per-task outcomes (quality checks) for result.json's `tasks`; none by default."""
        return []

    def summary(self, records: list) -> dict:
        """Workload-level figures merged into result.json's `workload` after evaluate (none by default)."""
        return {}
