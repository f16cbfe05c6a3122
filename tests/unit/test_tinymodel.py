"""The tiny models are real GGUF files, written deterministically from a seed."""
import hashlib

import gguf

from benchrun.provision.tinymodel import TINY_SPECS, ensure_tiny_model, write_tiny_gguf


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_same_seed_same_bytes(tmp_path):
    a = write_tiny_gguf(tmp_path / "a.gguf", TINY_SPECS["tiny"])
    b = write_tiny_gguf(tmp_path / "b.gguf", TINY_SPECS["tiny"])
    assert _sha(a) == _sha(b)


def test_header_is_llama_with_byte_vocab_and_template(tmp_path):
    path = ensure_tiny_model("tiny", tmp_path)
    r = gguf.GGUFReader(str(path))
    fields = r.fields
    arch = bytes(fields["general.architecture"].parts[-1]).decode()
    assert arch == "llama"
    assert bytes(fields["tokenizer.ggml.model"].parts[-1]).decode() == "llama"
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == 3 + 128 + 95
    assert "chat_template" in "".join(fields)
    assert int(fields["llama.block_count"].parts[-1][0]) == TINY_SPECS["tiny"].n_layer


def test_wide_is_larger_and_cached(tmp_path):
    small = ensure_tiny_model("tiny", tmp_path)
    wide = ensure_tiny_model("tiny_wide", tmp_path)
    assert wide.stat().st_size > 10 * small.stat().st_size
    mtime = wide.stat().st_mtime_ns
    assert ensure_tiny_model("tiny_wide", tmp_path) == wide
    assert wide.stat().st_mtime_ns == mtime  # second call reuses the cached file
