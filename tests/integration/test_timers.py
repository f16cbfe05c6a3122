"""Timer accuracy against a local streaming server whose send times are known exactly."""
from __future__ import annotations

import numpy as np
import pytest
from support import LoopLag, timedserver

from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import compute_metrics

# alone: timer error is measured against a same-run baseline that another test's load would move.
pytestmark = pytest.mark.alone

TTFT_MS, ITL_MS, TOKENS = 30.0, 8.0, 15


def _conv(rid: int):
    yield RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=TOKENS,
                      body={"rid": rid, "ttft_ms": TTFT_MS, "itl_ms": ITL_MS}, tags={"rid": rid},
                      expected_tokens=TOKENS)


def _reads(arrived) -> list[tuple[int, int, int]]:
    """The network reads the client got these events in, as (stamp, first event, last event):
    events stamped alike came in one read, and the client cannot time them apart."""
    out: list[list[int]] = []
    for i, ns in enumerate(arrived):
        if out and out[-1][0] == ns:
            out[-1][2] = i
        else:
            out.append([int(ns), i, i])
    return [tuple(g) for g in out]


@pytest.fixture(scope="module")
def timed_run():
    """The run, plus the event loop's own wake-up lag measured beside it on the same loop
    (support.LoopLag): on a loaded machine no client can stamp a chunk earlier than the
    scheduler lets its loop run, so that lag is the same-run baseline the client's error is
    judged against."""
    with timedserver.running() as url:
        async def go():
            async with LoopLag() as lag, make_session(30, {}) as session:
                engine = Engine(session, url + "/v1/chat/completions")
                records, wall_ns = await engine.run([_conv(i) for i in range(12)], LoadPlan(concurrency=4))
            return records, wall_ns, lag

        records, wall_ns, lag = run_loop(go())
        truth = timedserver.fetch_log(url)
    return records, wall_ns, truth, lag


def test_measured_ttft_and_itl_match_true_send_times(timed_run):
    records, wall_ns, truth, lag = timed_run
    assert len(records) == 12 and all(M.is_good(r) for r in records)
    errs, ttft_err, itl_err = [], [], []
    for r in records:
        sent = np.array(truth[str(r.tags["rid"])], dtype=np.int64)
        arrived = r.start_ns + np.array(M.token_offsets_ns(r), dtype=np.int64)
        assert len(arrived) == len(sent) == TOKENS  # one event per token, none lost or invented
        err = (arrived - sent) / 1e6
        errs.extend(err)
        ttft_err.append(err[0])
        itl_err.extend(np.diff(err))  # measured gap - sent gap
        # The role-only chunk came at once; the first token only after TTFT_MS.
        assert M.ttft_ms(r) >= TTFT_MS
        assert all(x >= 0 for x in M.itl_ms(r))
    errs, ttft_err, itl_err = np.array(errs), np.array(ttft_err), np.array(itl_err)
    # Causality, on the one clock both processes read (CLOCK_MONOTONIC): the server stamps
    # before its write, so no token can be stamped before it was sent. A wrong clock or unit
    # in the client's stamps breaks this at once.
    assert errs.min() >= 0, errs.min()
    # How late: against this run's own loop lag, at the same share of the run, plus a quarter
    # of the programmed gap for the client's own work per read, which no lag shows. A stamp
    # taken one read late, or after the stream, is off by a whole gap and fails.
    slack, lag50, lag90 = ITL_MS / 4, lag.quantile(0.5), lag.quantile(0.9)
    assert np.median(errs) < slack + lag50, (errs, lag50)
    assert np.median(ttft_err) < slack + lag50, (ttft_err, lag50)
    assert np.median(np.abs(itl_err)) < slack + lag50, (itl_err, lag50)
    assert np.percentile(errs, 90) < slack + lag90, (errs, lag90)


def test_summaries_see_the_known_timing(timed_run):
    """Summaries against what the server really did in this run (its own send stamps, same
    clock): on a loaded machine the server's sleeps overrun too, so the intended 30 ms / 8 ms
    are lower bounds and the server's actual gaps are the reference. Each summary may differ
    from the truth by no more than this run's own delivery errors (arrival - send, never < 0)
    allow: a percentile of values each off by at most d is off by at most d."""
    records, wall_ns, truth, _ = timed_run
    m = compute_metrics(records, wall_ns)
    assert m["requests_ok"] == 12 and m["token_count_mismatches"] == 0
    true_ttft, ttft_lag = [], []
    true_itl, itl_off = [], []
    true_tpot, tpot_lo, tpot_hi = [], [], []
    for r in records:
        sent = np.array(truth[str(r.tags["rid"])], dtype=np.int64)
        arrived = r.start_ns + np.array(M.token_offsets_ns(r), dtype=np.int64)
        true_ttft.append((sent[0] - r.start_ns) / 1e6)
        ttft_lag.append((arrived[0] - sent[0]) / 1e6)
        reads = _reads(arrived)
        # ITL as the client can see it: per read, the gap since the read before over the
        # tokens it brought; the truth is the same over the sends of each read's last event.
        for (pa, _, pi), (ga, gf, gi) in zip(reads, reads[1:]):
            k = gi - gf + 1
            true_itl += [(sent[gi] - sent[pi]) / 1e6 / k] * k
            itl_off.append(abs((ga - sent[gi]) - (pa - sent[pi])) / 1e6 / k)
        after = TOKENS - (reads[0][2] + 1)  # tokens after the first read
        true_tpot.append((sent[-1] - sent[reads[0][2]]) / 1e6 / after)
        e_first, e_last = (arrived[reads[0][2]] - sent[reads[0][2]]) / 1e6, (arrived[-1] - sent[-1]) / 1e6
        tail = (r.end_ns - arrived[-1]) / 1e6  # finish, usage and [DONE] after the last token
        tpot_lo.append((e_last - e_first) / after)
        tpot_hi.append((tail + e_last - e_first) / after)
    eps = 1e-6
    assert TTFT_MS <= float(np.median(true_ttft))
    assert np.median(true_ttft) + min(ttft_lag) - eps <= m["ttft_ms"]["p50"] <= np.median(true_ttft) + max(ttft_lag) + eps
    raw_itl = np.concatenate([np.diff(np.array(v, dtype=np.int64)) / 1e6 for v in truth.values()])
    assert ITL_MS <= float(np.median(raw_itl))
    assert abs(m["itl_ms"]["p50"] - np.median(true_itl)) <= max(itl_off) + eps, (m["itl_ms"], max(itl_off))
    assert m["itl_ms"]["n"] == len(true_itl) and m["itl_ms"]["min"] >= 0
    assert ITL_MS <= m["tpot_ms"]["p50"]
    assert np.median(true_tpot) + min(tpot_lo) - eps <= m["tpot_ms"]["p50"] <= np.median(true_tpot) + max(tpot_hi) + eps
    assert m["output_tokens"] == 12 * TOKENS


def test_client_decode_rate_agrees_with_llama_cpp(tiny_server):
    """The client's decode rate and llama.cpp's own predicted_per_second measure the same
    thing from two sides; on one box, at concurrency 1, they agree. 256 tokens, so that
    decoding spans many reads even for a client starved by other work (a reply read in one go
    has no client-side rate at all). Per request the client's window (first read -> end, for
    the tokens after the first read, at the client's rate) may differ from the server's
    (the same tokens at the server's rate) by what this run shows could move it: a late first
    token (at most what TTFT spent outside llama.cpp's prompt processing: a stalled client or
    a slow send), or the loop's own lag (support.LoopLag) at the end; plus 5% of the window,
    the agreement the two clocks reach on an idle box (a rate in the wrong unit, or counted
    over the wrong tokens, is off by far more)."""
    def conv(i):
        yield RequestSpec(messages=[{"role": "user", "content": f"{i} count to ten"}], max_tokens=256,
                          body={"ignore_eos": True, "cache_prompt": False, "temperature": 0.0},
                          expected_tokens=256)

    async def go():
        async with LoopLag() as lag, make_session(60, {}) as session:
            out = await Engine(session, tiny_server.url + "/v1/chat/completions").run(
                [conv(i) for i in range(5)], LoadPlan(concurrency=1))
        return out, lag

    (records, wall_ns), lag = run_loop(go())
    assert all(M.is_good(r) for r in records)
    ratios = []
    for r in records:
        client = M.decode_tok_s(r)
        if not client:
            continue
        server = r.timings["predicted_per_second"]
        ratios.append(client / server)
        offsets = M.token_offsets_ns(r)
        after = M.output_tokens(r) - offsets.count(offsets[0])  # one token per event here
        client_ms, server_ms = after / client * 1000, after / server * 1000
        allow = max(M.ttft_ms(r) - r.timings["prompt_ms"], lag.worst(r.start_ns, r.end_ns))
        assert abs(client_ms - server_ms) <= allow + 0.05 * server_ms, (client_ms, server_ms, allow)
    assert len(ratios) >= 3, ratios
    m = compute_metrics(records, wall_ns)
    st = M.server_timings(records, m["decode_tok_s"]["mean"])
    assert st["client_server_decode_ratio"] == pytest.approx(float(np.median(ratios)))
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
    expected, tpots, steps = [], [], []
    for r in records:
        sent = np.array(truth[r.tags["rid"]], dtype=np.int64)
        assert M.token_events(r) == len(sent) == 6
        assert M.output_tokens(r) == MT_TOKENS + 1  # the EOS counts, as llama.cpp counts it
        assert M.token_count_source(r) == "timings" and not M.token_count_mismatch(r)
        itl = M.itl_ms(r)
        assert len(M.chunk_gap_ms(r)) == 5
        # Split by read: events the client got in one read are one step (it cannot time them
        # apart); a busy client gets several at once. The usage chunk brings the EOS.
        arrived = r.start_ns + np.array(M.token_offsets_ns(r), dtype=np.int64)
        reads = _reads(arrived)
        usage_ns = r.start_ns + r.event_ns[r.event_kinds.index("u")]
        tokens = lambda g: sum(ks[g[1]:g[2] + 1])  # noqa: E731 -- the server's packing, not the record's
        # Every token after the first read has a sample: 13 tokens - those in the first read.
        assert len(itl) == MT_TOKENS + 1 - tokens(reads[0]) - (usage_ns == reads[0][0])
        at = 0
        for prev, cur in zip(reads, reads[1:]):
            if cur[0] == usage_ns:
                break  # the EOS came in this read too: its tokens are not the events' alone
            k = tokens(cur)
            # Each of the read's k tokens gets an equal share of the gap since the read before,
            # exactly: what the server packed into it, not one sample per event.
            assert itl[at:at + k] == pytest.approx([(cur[0] - prev[0]) / 1e6 / k] * k, rel=1e-9)
            # The truth: the server's own sends, divided alike.
            expected += [(sent[cur[2]] - sent[prev[2]]) / 1e6 / k] * k
            at += k
        # TPOT counts server tokens: about one generation step, not one event gap (two steps on
        # average here). The step is this request's own, from the server's sends.
        tpots.append(M.tpot_ms(r))
        steps.append((sent[-1] - sent[0]) / 1e6 / (MT_TOKENS - ks[0]))
    assert np.median(tpots) < 1.5 * np.median(steps), (tpots, steps)
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
