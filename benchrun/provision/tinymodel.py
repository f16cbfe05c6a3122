"""Write small, real llama-architecture GGUF models for tests and the demo.

The weights are random (seeded); the vocabulary is byte-level SPM restricted to ASCII, and the
weights let the model emit only printable non-space characters, so every generated token decodes
to exactly one character: one token, one SSE content event. No weights are ever downloaded.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# A plain template, so llama.cpp's chat parser has no stop words or tags to hold output back.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_ctx: int = 4096
    seed: int = 0


WRITER_VERSION = 2

TINY_SPECS = {
    "tiny": TinySpec(n_embd=256, n_layer=4, n_ff=768, n_head=4, seed=1),
    "tiny_wide": TinySpec(n_embd=768, n_layer=6, n_ff=2048, n_head=12, seed=2),
}


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    import gguf

    tokens = [b"<unk>", b"<s>", b"</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    # Byte fallback for ASCII only: prompts are ASCII, and a model that can only emit ASCII
    # never splits a character across tokens (which would merge SSE events).
    tokens += [f"<0x{b:02X}>".encode() for b in range(128)]
    types += [gguf.TokenType.BYTE] * 128
    # Printable characters as normal pieces, so prompts tokenise one char -> one token.
    for c in range(32, 127):
        tokens.append(("\u2581" if c == 32 else chr(c)).encode())
        types.append(gguf.TokenType.NORMAL)
    scores = [0.0] * len(tokens)
    return tokens, scores, [int(t) for t in types]


def write_tiny_gguf(path: Path, spec: TinySpec, name: str = "benchrun-tiny") -> Path:
    import gguf

    logging.getLogger("gguf").setLevel(logging.WARNING)  # its INFO lines are noise in a run
    rng = np.random.default_rng(spec.seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    head_dim = spec.n_embd // spec.n_head
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name(name)  # not the file name: the same spec must give the same bytes
    w.add_context_length(spec.n_ctx)
    w.add_embedding_length(spec.n_embd)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(spec.n_ff)
    w.add_head_count(spec.n_head)
    w.add_head_count_kv(spec.n_head)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def mat(rows: int, cols: int) -> np.ndarray:  # numpy (rows, cols) == ggml ne=[cols, rows]
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.05).astype(np.float16)

    e, f = spec.n_embd, spec.n_ff
    # Only printable, non-space pieces may be generated: whitespace, control bytes and NUL can
    # be trimmed or dropped by the server, which would break "one token, one SSE event".
    # Residual dimension 0 is held constant (no layer writes to it), and banned tokens get a
    # large negative weight on it, so their logits can never win.
    banned = np.array([t != gguf.TokenType.NORMAL or tok == "\u2581".encode()
                       for tok, t in zip(tokens, types)])
    embd = mat(n_vocab, e)
    embd[:, 0] = 4.0
    out = mat(n_vocab, e)
    out[:, 0] = np.where(banned, -50.0, 0.0)
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(e, dtype=np.float32))
    w.add_tensor("output.weight", out)
    for i in range(spec.n_layer):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", np.ones(e, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v"):
            w.add_tensor(b + name + ".weight", mat(e, e))
        w.add_tensor(b + "attn_output.weight", _no_write_to_dim0(mat(e, e)))
        w.add_tensor(b + "ffn_norm.weight", np.ones(e, dtype=np.float32))
        w.add_tensor(b + "ffn_gate.weight", mat(f, e))
        w.add_tensor(b + "ffn_up.weight", mat(f, e))
        w.add_tensor(b + "ffn_down.weight", _no_write_to_dim0(mat(e, f)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)  # atomic: a concurrent reader never sees half a model
    return path


def _no_write_to_dim0(m: np.ndarray) -> np.ndarray:
    m[0, :] = 0
    return m


def default_cache_dir() -> Path:
    env = os.environ.get("BENCHRUN_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "benchrun"
    return base / "models"


def ensure_tiny_model(name: str, cache_dir: Path | None = None) -> Path:
    """Return the path of tiny model `name`, writing it first if it is not cached yet."""
    spec = TINY_SPECS[name]
    # The writer's version is in the key: a changed writer must not reuse an old file.
    key = hashlib.sha256(repr((WRITER_VERSION, sorted(asdict(spec).items()))).encode()).hexdigest()[:10]
    path = (cache_dir or default_cache_dir()) / f"{name}-{key}.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_gguf(path, spec, name)
    return path
