"""Will a preset fit? Estimate its memory from the GGUF header, before anything is launched.

estimate = model file size + KV cache. The KV cache is what llama.cpp allocates for the
context: `cells x sum over attention layers of (n_head_kv x head_dim x bytes per element)`,
once for K and once for V, at the cache type (f16 unless cache_type_k/v say otherwise).
`--parallel N` without `--kv-unified` splits ctx into N slots of ctx/N cells each, so slots
change the per-slot context, not the total (only the rounding down to a multiple of N).
Compute buffers and the runtime are not counted: the measured peak in result.json shows the gap.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

from benchrun.config import BenchConfig
from benchrun.measure.hardware import MIB


class FitError(ValueError):
    """A preset cannot fit the hardware; the message is one line with both numbers."""


@dataclass
class GgufFacts:
    """The header fields the KV cache depends on."""

    arch: str
    n_layer: int
    n_embd: int
    n_head: int
    head_count_kv: list  # per layer; 0 = a layer without attention KV (recurrent, hybrid models)
    key_length: int
    value_length: int
    context_length: int
    vocab_size: int  # entries of tokenizer.ggml.tokens (0: none): under 1000 is a byte-level vocabulary


@dataclass
class MemoryEstimate:
    file_bytes: int
    kv_bytes: int
    ctx: int  # total KV cells
    slots: int
    ctx_per_slot: int
    kv_layers: int
    cache_type_k: str
    cache_type_v: str
    n_layer: int = 0  # all blocks: a partial GPU offload counts its share of them

    @property
    def total_bytes(self) -> int:
        return self.file_bytes + self.kv_bytes

    @property
    def total_mib(self) -> int:
        return math.ceil(self.total_bytes / MIB)

    def breakdown(self) -> str:
        return (f"{self.file_bytes / MIB:.0f} MiB weights + {self.kv_bytes / MIB:.0f} MiB KV cache "
                f"(ctx {self.ctx} = {self.slots} slots x {self.ctx_per_slot}, {self.kv_layers} layers, "
                f"{self.cache_type_k}/{self.cache_type_v})")

    def as_dict(self) -> dict:
        return {**asdict(self), "total_mib": self.total_mib, "kv_mib": round(self.kv_bytes / MIB, 2),
                "file_mib": round(self.file_bytes / MIB, 2)}


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def read_gguf_facts(path: Path) -> GgufFacts:
    """The header facts of a GGUF file, read once per file version (modelfile.file_cached)."""
    from benchrun.provision.modelfile import file_cached

    # The cache's name changes with GgufFacts' fields, so an entry written before a field was
    # added is not read as one without it.
    return GgufFacts(**file_cached(path, f"gguf_facts-{len(fields(GgufFacts))}", lambda p: asdict(_read_gguf_facts(p))))


def _read_gguf_facts(path: Path) -> GgufFacts:
    """Read the header of a GGUF file (memory-mapped; tensor data is not read)."""
    import logging

    import gguf

    logging.getLogger("gguf").setLevel(logging.WARNING)
    try:
        r = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as e:
        raise ValueError(f"cannot read GGUF header of {path}: {e}") from None
    arch = _field(r, "general.architecture")
    if not arch:
        raise ValueError(f"{path} has no general.architecture in its GGUF header")
    n_layer = int(_field(r, f"{arch}.block_count", 0))
    n_embd = int(_field(r, f"{arch}.embedding_length", 0))
    n_head = _field(r, f"{arch}.attention.head_count", 0)
    n_head = int(max(n_head) if isinstance(n_head, list) else n_head)
    kv = _field(r, f"{arch}.attention.head_count_kv", n_head)
    kv = [int(x) for x in kv] if isinstance(kv, list) else [int(kv)] * n_layer
    # Hybrid models (e.g. qwen3next/qwen35): only every Nth layer is full attention with a KV cache.
    interval = _field(r, f"{arch}.full_attention_interval")
    if interval:
        kv = [h if (i + 1) % int(interval) == 0 else 0 for i, h in enumerate(kv)]
    head_dim = n_embd // n_head if n_head else 0
    return GgufFacts(arch=arch, n_layer=n_layer, n_embd=n_embd, n_head=n_head, head_count_kv=kv,
                     key_length=int(_field(r, f"{arch}.attention.key_length", head_dim)),
                     value_length=int(_field(r, f"{arch}.attention.value_length", head_dim)),
                     context_length=int(_field(r, f"{arch}.context_length", 0)),
                     vocab_size=len(tokens.data) if (tokens := r.fields.get("tokenizer.ggml.tokens")) else 0)


def _row_bytes(cache_type: str, n: int) -> int:
    """Bytes for n elements of a ggml type (quantized types store blocks)."""
    import gguf

    try:
        qt = gguf.GGMLQuantizationType[cache_type.upper()]
    except KeyError:
        raise ValueError(f"unknown KV cache type {cache_type!r} (e.g. f16, q8_0, q4_0)") from None
    block, size = gguf.GGML_QUANT_SIZES[qt]
    return math.ceil(n / block) * size


def kv_cache_bytes(facts: GgufFacts, ctx: int, cache_type_k: str = "f16", cache_type_v: str = "f16") -> int:
    per_cell = sum(_row_bytes(cache_type_k, h * facts.key_length) +
                   _row_bytes(cache_type_v, h * facts.value_length)
                   for h in facts.head_count_kv if h)
    return ctx * per_cell


def estimate(m: Any, path: Path, facts: Optional[GgufFacts] = None) -> MemoryEstimate:
    """Memory estimate for preset `m` (a ModelConfig) serving the GGUF at `path`."""
    facts = facts or read_gguf_facts(path)
    ctx = int(m.ctx_size) or facts.context_length  # ctx_size 0 = the model's training context
    slots = max(1, int(m.parallel))
    per_slot = ctx if m.kv_unified else ctx // slots
    cells = ctx if m.kv_unified else per_slot * slots
    ck, cv = (m.cache_type_k or "f16").lower(), (m.cache_type_v or "f16").lower()
    return MemoryEstimate(file_bytes=path.stat().st_size, kv_bytes=kv_cache_bytes(facts, cells, ck, cv),
                          ctx=cells, slots=slots, ctx_per_slot=per_slot,
                          kv_layers=sum(1 for h in facts.head_count_kv if h),
                          cache_type_k=ck, cache_type_v=cv, n_layer=facts.n_layer)


def budget(m: Any, hw: dict, n_layer: int) -> tuple[Optional[int], str, float]:
    """(MiB available, what kind, share of the estimate that lands there) for preset m on hw."""
    ngl = int(m.n_gpu_layers)
    if ngl != 0 and hw.get("gpu_memory_mib"):
        share = 1.0 if ngl < 0 or ngl >= n_layer or not n_layer else ngl / n_layer
        return int(hw["gpu_memory_mib"]), "GPU memory", share
    return (int(hw["memory_mib"]) if hw.get("memory_mib") else None), "RAM", 1.0


def check_fit(m: Any, est: MemoryEstimate, hw: dict, n_layer: int) -> None:
    """Raise FitError when the estimate exceeds the hardware's memory (unknown memory: no check)."""
    have, what, share = budget(m, hw, n_layer)
    need = math.ceil(est.total_bytes * share / MIB)
    if have is not None and need > have:
        part = "" if share == 1.0 else f" ({share:.0%} of layers offloaded)"
        raise FitError(f"preset {m.name!r} needs about {need} MiB{part} ({est.breakdown()}) but hardware "
                       f"{hw.get('name', '?')!r} has {have} MiB of {what}; use a smaller ctx_size/preset, "
                       f"or set fit_check=false to run anyway")


def estimate_for(cfg: BenchConfig, path: Optional[Path]) -> Optional[MemoryEstimate]:
    """The estimate for cfg.model, or None for external servers (no file) and, when the user
    turned the fit check off, for a header that cannot be read."""
    if path is None:
        return None
    try:
        return estimate(cfg.model, path)
    except ValueError:
        if cfg.fit_check:
            raise
        return None


def check(cfg: BenchConfig, est: Optional[MemoryEstimate], hw: dict) -> None:
    """FitError when est cannot fit hw (skipped when cfg.fit_check is false)."""
    if est is None or not cfg.fit_check:
        return
    check_fit(cfg.model, est, hw, est.n_layer)


def preflight(cfg: BenchConfig, path: Optional[Path], hw: dict) -> Optional[MemoryEstimate]:
    """estimate_for + check: before launching, the estimate, or FitError if it cannot fit."""
    est = estimate_for(cfg, path)
    check(cfg, est, hw)
    return est
