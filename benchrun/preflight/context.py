"""Will every request of a workload fit one slot's context? Checked before launch.

llama.cpp gives each slot `ctx_size / parallel` tokens of KV cache unless the cache is unified
(`--kv-unified`: every sequence may use the whole `ctx_size`, and the running ones share it,
so there the requests in flight together must fit `ctx_size`); llama.cpp may pad the per-slot
figure up to a multiple of 256, so the floor used here is a lower bound. llama-server also caps a
slot at the model's training context (`<arch>.context_length` in the GGUF header): a bigger
ctx_size buys nothing past it. A request whose prompt plus reply outgrows its slot fails with
HTTP 400 `exceed_context_size_error`, usually late in a conversation whose history accumulated.

Each workload states its worst case (`Workload.context_need`): the largest prompt plus
max_tokens any of its requests can reach at this concurrency, i.e. for an agent's last turn the
system message, every user prompt, every earlier reply at its max_tokens, and the last
max_tokens. Without a tokenizer (before launch there is no server to ask) text is estimated at
one token per 3 UTF-8 bytes plus a few template tokens per message: on English prose and code
with a real BPE vocabulary that errs high by 10-40%, on CJK text it is about right. A model
whose vocabulary is byte-level (benchrun's tiny models; any GGUF with under 1000 tokens in its
header) gets one token per byte. Estimates are said to be estimates.

Policy: refuse (one line, both numbers and the fix; exit 2 from the CLI, nothing launched),
because a run that fails its late turns measures a different workload than the one asked for.
`context_check=false` runs anyway."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from benchrun.config import BenchConfig

BYTES_PER_TOKEN = 3.0
TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template, BOS included once


def estimate_tokens(text: str, bytes_per_token: float = BYTES_PER_TOKEN) -> int:
    """An estimate of a text's token count when no tokenizer is at hand (see module docstring)."""
    return math.ceil(len(text.encode("utf-8")) / bytes_per_token)


def estimate_messages(messages: list[dict], bytes_per_token: float = BYTES_PER_TOKEN) -> int:
    return sum(estimate_tokens(str(m.get("content") or ""), bytes_per_token) + TEMPLATE_TOKENS_PER_MESSAGE
               for m in messages)


def bytes_per_token_for(m: Any, path: Optional[Path] = None) -> float:
    """1.0 for a byte-level vocabulary (tiny models, or a GGUF header with under 1000 tokens),
    else BYTES_PER_TOKEN. Reads the header of a file that is already there once per file
    version (fit.read_gguf_facts: gguf's reader takes seconds over a 49k-token vocabulary, and
    every job asks)."""
    if m.tiny:
        return 1.0  # tinymodel.py writes a byte-level vocabulary
    path = path or (Path(str(m.path)).expanduser() if m.path else None)
    if path is not None and path.is_file():
        from benchrun.preflight.fit import read_gguf_facts

        try:
            if 0 < read_gguf_facts(path).vocab_size < 1000:
                return 1.0
        except (ValueError, OSError, KeyError):  # an unreadable header: the fit check says so
            pass
    return BYTES_PER_TOKEN


@dataclass
class ContextNeed:
    tokens: int  # prompt + max_tokens of the largest request
    what: str  # which request, in words ("agent primary, turn 3")
    estimated: bool  # True: text lengths estimated, not tokenized
    concurrent_tokens: int = 0  # the requests that can be in flight together, each at its worst

    def as_dict(self) -> dict:
        return {"need_tokens": self.tokens, "largest_request": self.what, "estimated": self.estimated,
                "concurrent_need_tokens": self.concurrent_tokens or self.tokens}


def train_context(m: Any, path: Optional[Path] = None) -> Optional[int]:
    """The model's training context from its GGUF header (llama-server's cap on a slot), or None
    when the file is not there yet or does not say. Reads only the header. A packaged or a
    built-in tiny model's is known before its file exists (its spec says it), so the check
    before a sweep refuses what its jobs would refuse."""
    path = path or (Path(str(m.path)).expanduser() if m.path else None)
    if path is None or not path.is_file():
        if m.package:
            from benchrun.provision.packaged import PACKAGED
            return PACKAGED[m.package].context_length if m.package in PACKAGED else None
        if m.tiny:
            from benchrun.provision.tinymodel import TINY_SPECS
            return TINY_SPECS[m.tiny].n_ctx if m.tiny in TINY_SPECS else None
        return None
    from benchrun.preflight.fit import read_gguf_facts

    try:
        return read_gguf_facts(path).context_length or None
    except (ValueError, OSError, KeyError):  # an unreadable header: the fit check says so
        return None


def _slot(m: Any) -> int:
    return int(m.ctx_size) if m.kv_unified else int(m.ctx_size) // max(1, int(m.parallel))


def per_slot(m: Any, path: Optional[Path] = None) -> Optional[int]:
    """Tokens one request may use on preset m (capped at the model's training context where its
    GGUF is at hand), or None when unknown (a server whose context the preset does not set,
    ctx 0 = the model's own length)."""
    from benchrun.servers.registry import backend_for

    if not m.ctx_size or not backend_for(m.backend).sets_context(m):
        return None
    train = train_context(m, path)
    return min(_slot(m), train) if train else _slot(m)


def _fits(m: Any, need: ContextNeed, unified: bool, path: Optional[Path] = None) -> bool:
    train = train_context(m, path)
    if train and need.tokens > train:
        return False
    if unified:  # one pool: everything in flight at once must fit it
        return (need.concurrent_tokens or need.tokens) <= int(m.ctx_size)
    return need.tokens <= int(m.ctx_size) // max(1, int(m.parallel))


def describe(cfg: BenchConfig, need: Optional[ContextNeed], path: Optional[Path] = None) -> Optional[dict]:
    """What result.json's workload.context records: need, per-slot context and the verdict."""
    if need is None:
        return None
    slot = per_slot(cfg.model, path)
    return {**need.as_dict(), "per_slot_tokens": slot, "kv_unified": bool(cfg.model.kv_unified),
            "fits": None if slot is None else _fits(cfg.model, need, bool(cfg.model.kv_unified), path)}


def check(cfg: BenchConfig, need: Optional[ContextNeed], path: Optional[Path] = None) -> None:
    """Raise ValueError (one line) when the workload's worst case outgrows its context."""
    m = cfg.model
    if need is None or per_slot(m, path) is None or not cfg.context_check or _fits(m, need, bool(m.kv_unified), path):
        return
    about = "about " if need.estimated else ""
    est = ", estimated" if need.estimated else ""
    train = train_context(m, path)
    if train and need.tokens > train:
        raise ValueError(f"workload {cfg.workload.name!r} needs {about}{need.tokens} tokens of context for its "
                         f"largest request ({need.what}{est}) but model {m.name!r} was trained for {train} and "
                         f"llama-server caps each slot there, whatever ctx_size is; set a lower "
                         f"{'workload.depth' if cfg.workload.depth else 'workload.max_tokens_cap'}, "
                         f"or context_check=false to run anyway")
    if m.kv_unified:
        what = (f"needs {about}{need.concurrent_tokens} tokens of context for the requests it can have in "
                f"flight together (the largest: {need.tokens}, {need.what}{est}) but preset {m.name!r} "
                f"shares ctx_size {m.ctx_size} between them (unified KV cache)")
        fixes = [f"model.ctx_size={need.concurrent_tokens}"]
    else:
        what = (f"needs {about}{need.tokens} tokens of context for its largest request ({need.what}{est}) "
                f"but preset {m.name!r} gives each slot {per_slot(m)} (ctx_size {m.ctx_size} / parallel "
                f"{m.parallel})")
        fixes = [f"model.ctx_size={need.tokens * max(1, int(m.parallel))}"]
        if int(m.parallel) > 1 and _fits(m, need, True):
            fixes.append("model.kv_unified=true")
    fixes.append("a lower workload.max_tokens_cap")
    raise ValueError(f"workload {cfg.workload.name!r} {what}; set {' or '.join(fixes)}, "
                     f"or context_check=false to run anyway")
