"""The raw per-request record, and JSONL read/write. Times are integer nanoseconds from
time.perf_counter_ns(); event times are offsets from the request's send time."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from benchrun.redact import redact

# One letter per SSE event, so a record stays small: role-only, content, reasoning (thinking),
# finish (finish_reason with empty delta), usage, done ([DONE]), error, other.
ROLE, CONTENT, REASONING, FINISH, USAGE, DONE, ERROR, OTHER = "rctfudeo"
TOKEN_KINDS = CONTENT + REASONING
# The error of an open-loop arrival the run stopped before it could start (engine.py).
NOT_SENT = "not sent: the run stopped before it could start"


@dataclass
class RequestRecord:
    id: int
    repeat: int = 0
    warmup: bool = False
    tags: dict = field(default_factory=dict)  # e.g. agent, turn
    scheduled_ns: Optional[int] = None  # open loop: when it should have been sent
    start_ns: int = 0  # when it was sent
    end_ns: int = 0  # when the stream ended (or failed)
    event_ns: list = field(default_factory=list)  # arrival offset of each SSE event
    event_kinds: str = ""  # one letter per event, see above
    status: Optional[int] = None  # HTTP status
    error: Optional[str] = None
    finish_reason: Optional[str] = None
    done: bool = False  # saw data: [DONE]
    usage: Optional[dict] = None
    timings: Optional[dict] = None  # llama.cpp's own timings
    text: str = ""  # content
    reasoning: str = ""  # reasoning_content
    expected_tokens: Optional[int] = None  # when the workload demands an exact length
    # Tokens the server says each event carried, parallel to event_ns (llama.cpp
    # `timings_per_token`: deltas of the cumulative `timings.predicted_n`; OpenAI-style servers:
    # entries of `logprobs.content`). None when the server gave no per-chunk counts (old records,
    # servers without either): metrics then fall back to the usage total (metrics.token_counts).
    event_tokens: Optional[list] = None
    token_source: Optional[str] = None  # "timings" | "logprobs" | None: where event_tokens came from
    # Connection setup, outside the per-chunk loop (aiohttp TraceConfig): "new" or "reused",
    # and for a new one how long DNS + TCP (+ TLS) took before the request could be written.
    connection: Optional[str] = None
    connect_ns: Optional[int] = None
    retried: bool = False  # a reused connection the server had closed: sent again on a new one
    worker: Optional[int] = None  # load.workers > 1: the worker process that sent it (0-based)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    def to_json(self) -> str:
        # The fields as they are, not asdict's deep copy of every list and dict (a record's
        # event lists hold one entry per token: the copy was most of the cost of writing it).
        return json.dumps({name: getattr(self, name) for name in _NAMES}, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestRecord:
        return cls(**{k: v for k, v in d.items() if k in _NAMES})


_NAMES = tuple(f.name for f in fields(RequestRecord))


def read_records(path: Path) -> list[RequestRecord]:
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(RequestRecord.from_dict(json.loads(line)))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash mid-write: skip it, keep the rest
    return out


class RecordWriter:
    """Appends one record per line and flushes, so a crash loses at most what the engine holds
    undecoded (see engine.DEFER_MAX)."""

    def __init__(self, path: Path):
        self._fh = open(path, "a", buffering=1)

    def write(self, rec: RequestRecord) -> None:
        self._fh.write(redact(rec.to_json()) + "\n")  # a server may echo an API key back

    def close(self) -> None:
        self._fh.close()
