"""Users' own traces: a JSONL file, one conversation per line, OpenAI chat format.

  {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...},
                {"role": "user", ...}], "max_tokens": 256}

Each user message is one measured turn, sent with every message before it as recorded (the
trace's own assistant replies, not the model's), so prompts are exactly the trace's and runs are
comparable across models. Trailing assistant messages are the trace's answers and are not sent.
Conversations are sent in closed loop, `concurrency` at a time, like `synthetic`."""
from __future__ import annotations

import json
from pathlib import Path

from benchrun.config import WorkloadConfig
from benchrun.load.client import RequestSpec
from benchrun.load.engine import Conversation
from benchrun.workloads.base import Workload, fixed

DATA_DIR = Path(__file__).resolve().parent / "data"
_PER_LINE = ("max_tokens", "temperature", "seed")


def resolve_path(path: str | None) -> Path:
    """As given (relative to the working directory), else a file shipped in workloads/data."""
    if not path:
        raise ValueError("workload.path is required for kind replay (a JSONL file of {\"messages\": [...]})")
    p = Path(path).expanduser()
    for cand in (p, DATA_DIR / p):
        if cand.is_file():
            return cand
    raise ValueError(f"workload.path: no such file {path!r} (looked in the working directory and {DATA_DIR})")


def load_jsonl(path: Path) -> list[dict]:
    """Validated lines; a bad line is a one-line error naming file and line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e})") from None
        msgs = d.get("messages") if isinstance(d, dict) else None
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in msgs):
            raise ValueError(f"{path}:{n}: needs \"messages\": a list of {{\"role\", \"content\"}}")
        if not any(m["role"] == "user" for m in msgs):
            raise ValueError(f"{path}:{n}: no user message to replay")
        out.append(d)
    if not out:
        raise ValueError(f"{path}: no conversations")
    return out


class ReplayWorkload(Workload):
    own_fields = ("path", "max_tokens_cap")

    def __init__(self, cfg: WorkloadConfig, concurrency: int):
        super().__init__(cfg, concurrency)
        self.path = resolve_path(cfg.path)
        self.lines = load_jsonl(self.path)
        self.extra = dict(cfg.extra_body)

    def _specs(self, i: int, line: dict) -> list[RequestSpec]:
        c = self.cfg
        mt = int(line.get("max_tokens", c.output_tokens))
        if c.max_tokens_cap:
            mt = min(mt, int(c.max_tokens_cap))
        body = {"temperature": float(line.get("temperature", c.temperature)),
                "seed": int(line.get("seed", c.seed + i)), "cache_prompt": c.cache_prompt, **self.extra}
        msgs = line["messages"]
        specs, turn = [], 0
        for k, m in enumerate(msgs):
            if m["role"] == "user":
                turn += 1
                specs.append(RequestSpec(messages=msgs[:k + 1], max_tokens=mt, body=dict(body),
                                         tags={"conversation": i, "turn": turn},
                                         reply_needed=False))  # the history is the trace's
        return specs

    def conversations(self, repeat: int) -> list[Conversation]:
        return [fixed(self._specs(i, line)) for i, line in enumerate(self.lines)]

    def planned_requests(self) -> int:
        return sum(len(list(self._specs(i, line))) for i, line in enumerate(self.lines))

    def context_need(self, bytes_per_token: float = 3.0):
        """The trace's largest turn: its messages up to the user message, estimated, + max_tokens."""
        from benchrun.preflight.context import ContextNeed, estimate_messages

        best = None
        for i, line in enumerate(self.lines):
            for spec in self._specs(i, line):
                n = estimate_messages(spec.messages, bytes_per_token) + spec.max_tokens
                if best is None or n > best.tokens:
                    best = ContextNeed(n, f"conversation {i + 1}, turn {spec.tags['turn']}", True)
        if best is not None:  # at worst, `concurrency` conversations at their largest turn at once
            best.concurrent_tokens = best.tokens * min(self.concurrency, len(self.lines))
        return best

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.path), "conversations": len(self.lines),
                "turns": sum(sum(m["role"] == "user" for m in line["messages"]) for line in self.lines)}
