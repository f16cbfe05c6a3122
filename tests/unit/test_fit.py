"""Memory estimate from the GGUF header, checked against KV sizes computed by hand, and the
refusal of a preset that cannot fit."""
from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from benchrun.config import ModelConfig
from benchrun.preflight import fit
from benchrun.provision.tinymodel import _vocab, ensure_tiny_model


def preset(**kw) -> ModelConfig:
    base = dict(name="tiny", tiny="tiny", ctx_size=4096, parallel=4)
    return ModelConfig(**{**base, **kw})


def test_header_facts_of_the_tiny_models():
    f = fit.read_gguf_facts(ensure_tiny_model("tiny"))
    assert (f.arch, f.n_layer, f.n_embd, f.n_head) == ("llama", 4, 256, 4)
    assert f.head_count_kv == [4, 4, 4, 4] and f.key_length == f.value_length == 64
    w = fit.read_gguf_facts(ensure_tiny_model("tiny_wide"))
    assert (w.n_layer, w.n_embd, w.n_head, w.key_length) == (6, 768, 12, 64)
    # A byte-level vocabulary, so the context check counts a token a byte -- read from the
    # header, not from the preset's tiny= (a user's copy of the file is a path=).
    from benchrun.preflight.context import bytes_per_token_for

    assert f.vocab_size == len(_vocab()[0]) < 1000
    assert bytes_per_token_for(ModelConfig(name="copy", path=str(ensure_tiny_model("tiny")))) == 1.0


@pytest.mark.parametrize("name, kv_bytes", [
    # cells x layers x (kv heads x head dim x 2 bytes f16) x 2 (K and V)
    ("tiny", 4096 * 4 * (4 * 64 * 2) * 2),         # 16 MiB
    ("tiny_wide", 4096 * 6 * (12 * 64 * 2) * 2),   # 72 MiB
])
def test_estimate_is_file_size_plus_hand_computed_kv(name, kv_bytes):
    path = ensure_tiny_model(name)
    est = fit.estimate(preset(name=name, tiny=name), path)
    assert est.kv_bytes == kv_bytes
    assert est.file_bytes == path.stat().st_size
    assert est.total_mib == -(-(path.stat().st_size + kv_bytes) // (1 << 20))
    assert (est.ctx, est.slots, est.ctx_per_slot, est.kv_layers) == (4096, 4, 1024, 4 if name == "tiny" else 6)


def test_cache_type_slots_and_ctx_change_the_kv_cache():
    path = ensure_tiny_model("tiny")
    # q8_0 stores 32 values in 34 bytes: a 256-value K row (4 heads x 64) is 8 blocks = 272 bytes.
    q8 = fit.estimate(preset(cache_type_k="q8_0", cache_type_v="q8_0"), path)
    assert q8.kv_bytes == 4096 * 4 * 272 * 2
    mixed = fit.estimate(preset(cache_type_k="q8_0"), path)  # V stays f16: 512 bytes a row
    assert mixed.kv_bytes == 4096 * 4 * (272 + 512)
    # 3 slots split 4096 cells into 3 x 1365 (llama.cpp rounds down); unified keeps all 4096.
    split = fit.estimate(preset(parallel=3), path)
    assert (split.ctx, split.ctx_per_slot, split.kv_bytes) == (4095, 1365, 4095 * 4 * 512 * 2)
    unified = fit.estimate(preset(parallel=3, kv_unified=True), path)
    assert (unified.ctx, unified.ctx_per_slot) == (4096, 4096)
    # ctx_size 0 = the context length in the header (4096 for the tiny models)
    assert fit.estimate(preset(ctx_size=0, parallel=1), path).ctx == 4096
    assert fit.estimate(preset(ctx_size=8192), path).kv_bytes == 2 * 16 * (1 << 20)
    with pytest.raises(ValueError, match="unknown KV cache type 'q9'"):
        fit.estimate(preset(cache_type_k="q9"), path)


def test_gqa_key_length_and_hybrid_layers_from_the_header(tmp_path: Path):
    """A header like a hybrid MoE (qwen3next-style): 8 blocks, only every 4th has attention,
    2 KV heads of 256 dims. Written header-only with gguf's own writer."""
    path = tmp_path / "hybrid.gguf"
    w = gguf.GGUFWriter(str(path), "hybrid")
    w.add_block_count(8)
    w.add_embedding_length(2048)
    w.add_head_count(16)
    w.add_head_count_kv(2)
    w.add_key_length(256)
    w.add_value_length(256)
    w.add_context_length(262144)
    w.add_uint32("hybrid.full_attention_interval", 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    est = fit.estimate(ModelConfig(name="h", path=str(path), ctx_size=1000, parallel=1), path)
    assert est.kv_layers == 2  # blocks 3 and 7
    assert est.kv_bytes == 1000 * 2 * (2 * 256 * 2) * 2


def test_refusal_is_one_line_with_both_numbers():
    path = ensure_tiny_model("tiny")
    m = preset()
    est = fit.estimate(m, path)
    with pytest.raises(fit.FitError) as e:
        fit.check_fit(m, est, {"name": "small", "memory_mib": 10}, n_layer=4)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"needs about {est.total_mib} MiB" in msg and "has 10 MiB of RAM" in msg
    assert "fit_check=false" in msg
    fit.check_fit(m, est, {"name": "big", "memory_mib": est.total_mib}, n_layer=4)  # exactly fits
    fit.check_fit(m, est, {"name": "unknown"}, n_layer=4)  # memory unknown: no check


def test_gpu_budget_counts_the_offloaded_share():
    path = ensure_tiny_model("tiny")
    hw = {"name": "gpu", "gpu_memory_mib": 12, "memory_mib": 100000}
    est = fit.estimate(preset(n_gpu_layers=-1), path)  # 23 MiB, all on the GPU
    with pytest.raises(fit.FitError, match="has 12 MiB of GPU memory"):
        fit.check_fit(preset(n_gpu_layers=-1), est, hw, n_layer=4)
    # 2 of 4 layers offloaded: half the estimate lands on the GPU (about 11.4 MiB)
    fit.check_fit(preset(n_gpu_layers=2), est, hw, n_layer=4)
    with pytest.raises(fit.FitError, match=r"50% of layers offloaded"):
        fit.check_fit(preset(n_gpu_layers=2), est, {**hw, "gpu_memory_mib": 8}, n_layer=4)
    # n_gpu_layers 0 on a GPU machine: RAM is what counts
    fit.check_fit(preset(n_gpu_layers=0), est, hw, n_layer=4)


def test_job_refuses_before_launching(compose, tmp_path):
    """The whole path: hardware.memory_mib=10 -> failed job with the one-line error, no server."""
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        res = run_job(compose(["model=tiny", "hardware.memory_mib=10"]), tmp_path / "job", pool, 0, "t")
    finally:
        pool.close()
    assert res["status"] == "failed"
    assert "has 10 MiB of RAM" in res["error"] and "fit_check=false" in res["error"]
    assert pool.current is None and res["server"]["pid"] is None
    est = fit.estimate(preset(ctx_size=16384), ensure_tiny_model("tiny"))  # conf/model/tiny.yaml
    assert res["server"]["memory"]["estimate_mib"] == est.total_mib  # kept although refused


def test_fit_check_false_overrides(compose):
    cfg = compose(["model=tiny", "hardware.memory_mib=10", "fit_check=false"])
    est = fit.preflight(cfg, ensure_tiny_model("tiny"), {"name": "auto", "memory_mib": 10})
    assert est is not None and est.total_mib > 10


def test_gguf_header_is_read_once_per_file_version(tmp_path, monkeypatch):
    """The header facts are cached by path, size and mtime: a second read does not open the
    file's header again; a changed file is read afresh."""
    import os

    model = tmp_path / "m.gguf"
    model.write_bytes(ensure_tiny_model("tiny").read_bytes())
    monkeypatch.setenv("BENCHRUN_CACHE", str(tmp_path / "cache"))
    first = fit.read_gguf_facts(model)
    assert first.arch == "llama" and first.n_layer > 0

    def refuse(*a, **k):
        raise AssertionError("the header was read again")

    monkeypatch.setattr(gguf, "GGUFReader", refuse)
    assert fit.read_gguf_facts(model) == first  # from the cache
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(AssertionError, match="read again"):
        fit.read_gguf_facts(model)  # a new version of the file: read afresh
