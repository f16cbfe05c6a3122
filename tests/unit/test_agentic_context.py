"""The agentic workload's context check, composed but not run: the worst case counts the history
at max_tokens, and a unified KV cache is judged on what runs at once.
This half needs no server, process or socket; the rest is in tests/integration/test_agentic_context.py."""
from __future__ import annotations

import pytest

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
