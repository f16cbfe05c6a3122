"""The agentic workload's context check, composed but not run: the worst case counts the history
at max_tokens, and a unified KV cache is judged on what runs at once.
This half needs no server, process or socket; the rest is in tests/integration/test_agentic_context.py."""
from __future__ import annotations

import pytest
from support import ROOT

from benchrun.preflight import context


def test_worst_case_counts_history_at_max_tokens(compose):
    from benchrun.workloads import make_workload

    cfg = compose(["workload=agentic_coding", "model=qwen3coder", "concurrency=3"])
    w = make_workload(cfg.workload, 3)
    need = w.context_need()
    # primary turn 3: three replies of max_tokens 1024 are part of the worst case
    assert need.tokens > 3 * 1024 and "primary, turn 3" in need.what and need.estimated
    capped = make_workload(compose(["workload=agentic_coding", "workload.max_tokens_cap=16"]).workload, 1)
    assert capped.context_need().tokens < need.tokens - 3 * 1000
    # a byte-level vocabulary (tiny) needs about 3x the tokens for the same text
    assert capped.context_need(1.0).tokens > 2 * capped.context_need().tokens - 100
    d = context.describe(cfg, need)
    assert d["per_slot_tokens"] == 40960 // 3 and d["fits"] is True and d["concurrent_need_tokens"] > need.tokens


def test_unified_cache_is_judged_on_what_runs_at_once(compose):
    from benchrun.workloads import make_workload

    cfg = compose(["workload=agentic_coding", "concurrency=3", "model.kv_unified=true", "model.ctx_size=4096",
                   "workload.max_tokens_cap=600"])
    need = make_workload(cfg.workload, 3).context_need(1.0)
    assert need.tokens <= 4096 < need.concurrent_tokens  # each fits alone, not all three at once
    with pytest.raises(ValueError, match=r"flight together .* shares ctx_size 4096"):
        context.check(cfg, need)


def _context_error(compose, overrides, concurrency: int | None = None) -> str | None:
    """The context check's refusal for this config, or None when it fits (as precheck checks
    it: no model file at hand, the training context from the preset's spec)."""
    from benchrun.workloads import make_workload

    cfg = compose(overrides)
    need = make_workload(cfg.workload, concurrency or cfg.concurrency).context_need(
        context.bytes_per_token_for(cfg.model))
    try:
        context.check(cfg, need)
    except ValueError as e:
        return str(e)
    return None


SHIPPED_PRESETS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml") if p.stem != "external")
SHIPPED_WORKLOADS = sorted(p.stem for p in (ROOT / "conf" / "workload").glob("*.yaml"))


@pytest.mark.parametrize("preset", SHIPPED_PRESETS)
def test_every_shipped_preset_runs_every_shipped_workload_as_shipped(compose, preset):
    assert len(SHIPPED_PRESETS) >= 6 and "agentic_coding" in SHIPPED_WORKLOADS
    from dataclasses import replace

    from benchrun.workloads import make_workload

    # Groups do not reach into each other (no file of either is `@package _global_`), so the
    # preset composed once and each workload composed once make the same config as composing
    # both together: 16 composes for the 8 x 8 pairs instead of 64 (compose is cached).
    assert not any("_global_" in p.read_text() for g in ("model", "workload") for p in (ROOT / "conf" / g).glob("*.yaml"))
    model = compose([f"model={preset}"]).model
    for workload in SHIPPED_WORKLOADS:
        cfg = replace(compose([f"workload={workload}"]), model=model)
        for c in (1, 2, 3):  # the seed's levels
            need = make_workload(cfg.workload, c).context_need(context.bytes_per_token_for(cfg.model))
            try:
                context.check(replace(cfg, concurrency=c), need)
            except ValueError as e:
                raise AssertionError(f"{preset} x {workload} at C{c}: {e}") from None


@pytest.mark.parametrize("over", [
    ["model.ctx_size=4096", "concurrency=1"],       # 4 slots of 1024
    ["model.ctx_size=4096", "concurrency=3"],       # unified: 3 agents' worst cases must share 4096
    ["model.ctx_size=8192", "concurrency=2"],
])
def test_every_fix_the_context_check_suggests_works_when_applied(compose, over):
    base = ["model=tiny", "workload=agentic_coding", *over]
    err = _context_error(compose, base)
    assert err is not None and "; set " in err
    fixes = [f for f in err.split("; set ", 1)[1].split(", or context_check=false")[0].split(" or ")
             if "=" in f]
    assert fixes and all(f.startswith("model.") for f in fixes), err
    for fix in fixes:
        assert _context_error(compose, [*base, fix]) is None, f"suggested {fix} still fails: {err}"


def test_a_depth_that_cannot_fit_a_slot_is_refused_with_both_numbers_and_the_fix(compose):
    base = ["model=smollm2", "workload=depth", "workload.depth=6144"]
    err = _context_error(compose, base)
    assert err is not None and "needs 6208 tokens" in err and "gives each slot 4096" in err, err
    assert "model.ctx_size=18624" in err
    assert _context_error(compose, [*base, "model.ctx_size=18624"]) is None  # the fix works
    assert _context_error(compose, ["model=smollm2", "workload=depth", "workload.depth=2048"]) is None


def test_a_depth_past_the_training_context_is_refused_before_any_model_file_exists(compose):
    """A packaged or tiny model's training context is in its spec, so the check before a sweep
    (no file fetched yet) refuses what the job would, and its fix is one that works: raising
    ctx_size cannot help (SmolLM2 was trained for 8192)."""
    base = ["model=smollm2", "workload=depth", "workload.depth=16384"]
    err = _context_error(compose, base)
    assert err is not None and "trained for 8192" in err and "ctx_size=" not in err, err
    assert "a lower workload.depth" in err
    # Under the cap, what is left is the slot, whose fixes work in turn.
    err = _context_error(compose, [*base, "workload.depth=8000"])
    assert "trained for" not in err and "model.ctx_size=24192" in err, err
    assert _context_error(compose, [*base, "workload.depth=8000", "model.ctx_size=24192"]) is None
    assert _context_error(compose, ["model=tiny", "workload=depth", "workload.depth=8192"]).count("trained for 4096")


def test_a_slot_is_capped_at_the_models_training_context(compose):
    """llama-server caps each slot at the GGUF's context_length (tiny: 4096): a depth past it is
    refused before launch, however large ctx_size is, and the fix does not say "raise ctx_size"."""
    from benchrun.provision.tinymodel import ensure_tiny_model

    path = ensure_tiny_model("tiny")
    cfg = compose(["model=tiny", "model.parallel=1", "model.ctx_size=32768", "workload=depth"])
    assert context.train_context(cfg.model, path) == 4096
    need = context.ContextNeed(tokens=16_400, what="depth 16384", estimated=False)
    d = context.describe(cfg, need, path)
    assert d["per_slot_tokens"] == 4096 and d["fits"] is False
    with pytest.raises(ValueError, match=r"needs 16400 tokens .* trained for 4096 .* caps each slot") as e:
        context.check(cfg, need, path)
    assert "ctx_size=" not in str(e.value)
    context.check(cfg, context.ContextNeed(tokens=4000, what="depth 3900", estimated=False), path)  # fits
    assert context.per_slot(cfg.model) == 4096  # without the file at hand: the tiny spec's n_ctx


def test_a_server_without_tokenizer_endpoints_gets_the_estimate_and_says_so(compose):
    # An external server that is not llama.cpp answers /tokenize with 404: the job must go on,
    # counting by estimate, and result.json's workload says why.
    from benchrun.servers.tokenizer import TokenizerError
    from benchrun.workloads import make_workload

    class NoTokenizer:
        def tokenize(self, text, add_special):
            raise TokenizerError("POST /tokenize: HTTP Error 404: Not Found")

    w = make_workload(compose(["workload=agentic_coding", "concurrency=2"]).workload, 2)
    w.prepare(NoTokenizer())
    assert w.context_need().estimated
    assert w.describe()["prompt_tokens_note"] == ("no server tokenizer (POST /tokenize: HTTP Error 404: Not Found); "
                                                  "token counts are estimates")
