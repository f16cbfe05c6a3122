"""Timer accuracy against a local streaming server whose send times are known exactly."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from support import timedserver

from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import compute_metrics

TTFT_MS, ITL_MS, TOKENS = 30.0, 8.0, 15


def _conv(rid: int):
    yield RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=TOKENS,
                      body={"rid": rid, "ttft_ms": TTFT_MS, "itl_ms": ITL_MS}, tags={"rid": rid},
                      expected_tokens=TOKENS)


@pytest.fixture(scope="module")
def timed_run():
    """The run, plus the event loop's own wake-up lag measured beside it: on a loaded machine
    no client can stamp a chunk earlier than the scheduler lets its loop run, so that lag is
    the same-run baseline the client's error is judged against."""
    lags: list[float] = []

    async def probe():
        while True:
            t = time.perf_counter_ns()
            await asyncio.sleep(0.002)
            lags.append((time.perf_counter_ns() - t) / 1e6 - 2.0)

    with timedserver.running() as url:
        async def go():
            lag = asyncio.ensure_future(probe())
            try:
                async with make_session(30, {}) as session:
                    engine = Engine(session, url + "/v1/chat/completions")
                    return await engine.run([_conv(i) for i in range(12)], LoadPlan(concurrency=4))
            finally:
                lag.cancel()

        records, wall_ns = run_loop(go())
        truth = timedserver.fetch_log(url)
    return records, wall_ns, truth, np.array(lags)


def test_measured_ttft_and_itl_match_true_send_times(timed_run):
    records, wall_ns, truth, lags = timed_run
    assert len(records) == 12 and all(M.is_good(r) for r in records)
    ttft_err, itl_err = [], []
    for r in records:
        sent = np.array(truth[str(r.tags["rid"])], dtype=np.int64)
        arrived = r.start_ns + np.array(M.token_offsets_ns(r), dtype=np.int64)
        assert len(arrived) == len(sent) == TOKENS  # one event per token, none lost or invented
        err = (arrived - sent) / 1e6
        ttft_err.append(err[0])
        itl_err.extend(np.diff(arrived) / 1e6 - np.diff(sent) / 1e6)
        # The role-only chunk came at once; the first token only after TTFT_MS.
        assert M.ttft_ms(r) >= TTFT_MS
        assert all(x >= 0 for x in M.itl_ms(r))
    ttft_err, itl_err = np.array(ttft_err), np.array(itl_err)
    # A token cannot arrive before it was sent (small slack: the server stamps after write()).
    assert ttft_err.min() > -1.0 and (np.array(itl_err) + 1e-9).min() > -20.0
    lag50, lag90 = np.median(lags), np.percentile(lags, 90)
    assert np.median(ttft_err) < 2.0 + lag50, (ttft_err, lag50)
    assert np.median(np.abs(itl_err)) < 1.0 + lag50, (itl_err, lag50)
    assert np.percentile(ttft_err, 90) < 20.0 + lag90, (ttft_err, lag90)


def test_summaries_see_the_known_timing(timed_run):
    """Summaries against what the server really did in this run (its own send stamps, same
    clock): on a loaded machine the server's sleeps overrun too, so the intended 30 ms / 8 ms
    are lower bounds and the server's actual gaps are the reference."""
    records, wall_ns, truth, _ = timed_run
    m = compute_metrics(records, wall_ns)
    assert m["requests_ok"] == 12 and m["token_count_mismatches"] == 0
    sent = {r.id: np.array(truth[str(r.tags["rid"])], dtype=np.int64) for r in records}
    true_ttft = np.median([(sent[r.id][0] - r.start_ns) / 1e6 for r in records])
    true_itl = np.median(np.concatenate([np.diff(s) / 1e6 for s in sent.values()]))
    true_tpot = np.median([(s[-1] - s[0]) / 1e6 / (TOKENS - 1) for s in sent.values()])
    assert TTFT_MS <= true_ttft <= m["ttft_ms"]["p50"] < true_ttft + 10
    assert ITL_MS <= true_itl and abs(m["itl_ms"]["p50"] - true_itl) < 2
    assert m["itl_ms"]["min"] >= 0
    assert ITL_MS <= m["tpot_ms"]["p50"] and abs(m["tpot_ms"]["p50"] - true_tpot) < 2
    assert m["output_tokens"] == 12 * TOKENS


def test_client_decode_rate_agrees_with_llama_cpp(tiny_server):
    """The client's decode rate and llama.cpp's own predicted_per_second measure the same
    thing from two sides; on one box, at concurrency 1, they agree within a few percent.
    256 tokens, so that decoding spans many reads even for a client starved by other work (a
    reply read in one go has no client-side rate at all)."""
    def conv(i):
        yield RequestSpec(messages=[{"role": "user", "content": f"{i} count to ten"}], max_tokens=256,
                          body={"ignore_eos": True, "cache_prompt": False, "temperature": 0.0},
                          expected_tokens=256)

    async def go():
        async with make_session(60, {}) as session:
            return await Engine(session, tiny_server.url + "/v1/chat/completions").run(
                [conv(i) for i in range(5)], LoadPlan(concurrency=1))

    records, wall_ns = run_loop(go())
    assert all(M.is_good(r) for r in records)
    ratios = [M.decode_tok_s(r) / r.timings["predicted_per_second"] for r in records if M.decode_tok_s(r)]
    assert len(ratios) >= 3 and 0.85 < float(np.median(ratios)) < 1.15, ratios
    m = compute_metrics(records, wall_ns)
    st = M.server_timings(records, m["decode_tok_s"]["mean"])
    assert 0.8 < st["client_server_decode_ratio"] < 1.2
    # The per-event counts (timings_per_token) add up to the server's usage.
    assert m["token_count_mismatches"] == 0


# Multi-token events, as llama.cpp streams CJK text and emoji: the timed server packs 2, 3 and
# 1 tokens per event, generating one token every MT_ITL_MS, adds per-event counts
# (timings_per_token) and a final EOS token that shows no text.
MT_ITL_MS, MT_TOKENS, MT_PATTERN = 6.0, 12, [2, 3, 1]


def _mt_run(url: str, counts: str) -> list:
    from benchrun.load.client import token_count_body

    def conv(i):
        yield RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=MT_TOKENS,
                          body={"rid": f"{counts}{i}", "ttft_ms": 20.0, "itl_ms": MT_ITL_MS,
                                "tokens_per_event": MT_PATTERN, "eos": True}, tags={"rid": f"{counts}{i}"})

    async def go():
        async with make_session(30, {}) as session:
            engine = Engine(session, url + "/v1/chat/completions",
                            extra_body=token_count_body(counts, llama_cpp=True))
            return await engine.run([conv(i) for i in range(8)], LoadPlan(concurrency=4))

    return run_loop(go())[0]


@pytest.fixture(scope="module")
def multi_token_runs():
    with timedserver.running() as url:
        with_counts = _mt_run(url, "timings")
        without = _mt_run(url, "off")
        truth = timedserver.fetch_log(url)
    return with_counts, without, truth


def test_per_token_itl_splits_each_event_gap_over_its_tokens(multi_token_runs):
    records, _, truth = multi_token_runs
    assert len(records) == 8 and all(M.is_good(r) for r in records)
    ks = (MT_PATTERN * 3)[:6]  # tokens per content event: 2, 3, 1, 2, 3, 1
    expected, measured = [], []
    for r in records:
        sent = np.array(truth[r.tags["rid"]], dtype=np.int64)
        assert M.token_events(r) == len(sent) == 6
        assert M.output_tokens(r) == MT_TOKENS + 1  # the EOS counts, as llama.cpp counts it
        assert M.token_count_source(r) == "timings" and not M.token_count_mismatch(r)
        itl = M.itl_ms(r)
        # Every token after the first event has a sample: 13 tokens - 2 in the first event.
        assert len(itl) == MT_TOKENS + 1 - ks[0]
        assert len(M.chunk_gap_ms(r)) == 5
        # The sent gaps, divided over the tokens each event brought, are the truth; the last
        # sample is the EOS (usage chunk), which has no logged send time.
        for i in range(1, 6):
            expected += [(sent[i] - sent[i - 1]) / 1e6 / ks[i]] * ks[i]
        measured += itl[:-1]
        # TPOT counts server tokens: about one generation step, not one event gap.
        assert M.tpot_ms(r) < 2 * MT_ITL_MS
    err = np.array(measured) - np.array(expected)
    assert np.median(np.abs(err)) < 1.0, err
    # Per token, the gaps are the generation step; per event they are 1-3 steps. Compare with
    # the server's own sends in this run, not with the nominal sleep (a busy box oversleeps).
    m = compute_metrics(records, 10**9)
    true_step = float(np.mean(expected))
    assert m["itl_ms"]["mean"] == pytest.approx(true_step, rel=0.25)
    assert m["chunk_gap_ms"]["mean"] > 1.5 * m["itl_ms"]["mean"]
    assert m["token_count_mismatches"] == 0 and m["token_count_sources"] == {"timings": 8}
    assert m["tokens_per_event"]["mean"] == pytest.approx(13 / 6)


def test_without_per_event_counts_the_total_is_spread_not_flagged(multi_token_runs):
    with_counts, without, _ = multi_token_runs
    assert all(M.is_good(r) and r.event_tokens is None for r in without)
    m = compute_metrics(without, 10**9)
    m_counts = compute_metrics(with_counts, 10**9)
    assert m["token_count_mismatches"] == 0 and m["token_count_sources"] == {"spread": 8}
    # The spread estimate keeps the per-token mean (over 12 tokens, within TTFT's excess).
    assert m["itl_ms"]["mean"] == pytest.approx(m_counts["itl_ms"]["mean"], rel=0.3)
    assert m["chunk_gap_ms"]["mean"] == pytest.approx(m_counts["chunk_gap_ms"]["mean"], rel=0.3)
