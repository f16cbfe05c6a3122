"""Every metric on hand-built nanosecond records."""
from __future__ import annotations

import pytest

from benchrun.load.records import NOT_SENT, RequestRecord
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import compute_metrics
from benchrun.measure.failures import failures_by_cause
from benchrun.measure.stats import goodput_of
from benchrun.measure.summaries import summarize

MS = 1_000_000  # ns


def rec(events, kinds, *, end_ms=None, usage_out=None, prompt=100, expected=None, error=None,
        status=200, scheduled_ns=None, start_ns=10 * MS, timings=None, id=0):
    r = RequestRecord(id=id, start_ns=start_ns, scheduled_ns=scheduled_ns, status=status,
                      error=error, expected_tokens=expected, timings=timings)
    r.event_ns = [int(e * MS) for e in events]
    r.event_kinds = kinds
    r.end_ns = start_ns + int((end_ms if end_ms is not None else (events[-1] if events else 0)) * MS)
    if usage_out is not None:
        r.usage = {"completion_tokens": usage_out, "prompt_tokens": prompt}
    r.done = "d" in kinds
    return r


def test_role_only_first_chunk_is_not_a_token():
    # role at 5 ms, tokens at 20, 30, 45, finish, usage, done at 50.
    r = rec([5, 20, 30, 45, 46, 47, 50], "rcccfud", usage_out=3)
    assert M.ttft_ms(r) == 20
    assert M.ttfa_ms(r) == 20
    assert M.itl_ms(r) == [10, 15]
    assert M.e2e_ms(r) == 50
    assert M.tpot_ms(r) == pytest.approx((50 - 20) / 2)
    assert M.decode_tok_s(r) == pytest.approx(1000 / 15)
    assert M.prefill_tok_s(r) == pytest.approx(100 / 0.020)
    assert M.token_events(r) == 3 and not M.token_count_mismatch(r)


def test_reasoning_then_content():
    r = rec([1, 10, 12, 14, 40, 42, 50, 51], "rtttccud", usage_out=5)
    assert M.ttft_ms(r) == 10  # thinking counts as the first token
    assert M.ttfa_ms(r) == 40  # the first answer token comes later
    assert M.itl_ms(r) == [2, 2, 26, 2]
    assert M.tpot_ms(r) == pytest.approx((51 - 10) / 4)


def test_zero_token_reply():
    r = rec([3, 4, 5, 6], "rfud", usage_out=0)
    assert r.ok
    assert M.ttft_ms(r) is None and M.ttfa_ms(r) is None
    assert M.itl_ms(r) == [] and M.tpot_ms(r) is None and M.decode_tok_s(r) is None
    assert M.prefill_tok_s(r) is None
    m = compute_metrics([r], 10 * MS)
    assert m["requests_ok"] == 1 and m["ttft_ms"]["n"] == 0 and m["output_tokens"] == 0


def test_a_reply_in_one_read_has_no_decode_rate():
    """Twelve tokens in one event (a buffering proxy, or a fast server's bytes coalesced): the
    client saw no decoding, so TPOT and decode speed are unknown, not 12 tokens over the 0.2 ms
    until [DONE] (55,000 tok/s)."""
    r = per_event(rec([1, 20, 20.1, 20.2], "rcud", usage_out=12), [0, 12, 0, 0])
    assert M.ttft_ms(r) == 20 and M.e2e_ms(r) == pytest.approx(20.2)
    assert M.tpot_ms(r) is None and M.decode_tok_s(r) is None
    m = compute_metrics([r], 100 * MS)
    assert m["requests_ok"] == 1 and m["output_tokens"] == 12 and m["tpot_ms"]["n"] == 0


def test_one_token_reply():
    r = rec([3, 8, 9, 9, 10], "rcfud", usage_out=1)
    assert M.ttft_ms(r) == 8
    assert M.itl_ms(r) == []
    assert M.tpot_ms(r) is None and M.decode_tok_s(r) is None


def test_multi_token_events_without_counts_are_spread_not_flagged():
    # The server says 4 tokens but only 3 token events came and no per-event counts: one event
    # carried two tokens. Not a mismatch; the total is spread evenly over the gaps.
    r = rec([1, 2, 4, 7, 8, 9], "rcccud", usage_out=4)
    assert M.output_tokens(r) == 4 and M.token_events(r) == 3
    assert M.token_count_source(r) == "spread" and not M.token_count_mismatch(r)
    assert M.chunk_gap_ms(r) == [2, 3]
    # 3 tokens after the first arrived over 5 ms: each gap carries 1.5 tokens.
    assert M.itl_ms(r) == pytest.approx([2 / 1.5, 3 / 1.5])
    assert M.tokens_per_event(r) == pytest.approx(4 / 3)
    m = compute_metrics([r], 10 * MS)
    assert m["token_count_mismatches"] == 0 and m["token_count_sources"] == {"spread": 1}


def per_event(r, counts, source="timings"):
    r.event_tokens, r.token_source = counts, source
    return r


def test_multi_token_chunks_give_per_token_itl():
    # CJK + emoji as llama.cpp streams it (timings_per_token): role, then events carrying
    # 2, 3, 1, 2 tokens, finish, a usage chunk whose count rises by 1 (the EOS), [DONE].
    r = per_event(rec([1, 20, 26, 29, 33, 36, 36.5, 37], "rccccfud", usage_out=9),
                  [0, 2, 3, 1, 2, 0, 1, 0])
    assert M.ttft_ms(r) == 20  # the first event that carries a token, whatever it carries
    assert M.chunk_gap_ms(r) == [6, 3, 4]  # between token events, unsplit
    # 6 ms over 3 tokens, 3 ms over 1, 4 ms over 2, then the EOS 3.5 ms later (usage chunk).
    # The first event's second token arrived inside TTFT: no gap of its own, no sample.
    assert M.itl_ms(r) == pytest.approx([2, 2, 2, 3, 2, 2, 3.5])
    # Server tokens, not events, and only those after the first event: its 2 came inside TTFT.
    assert M.tpot_ms(r) == pytest.approx((37 - 20) / 7)
    assert not M.token_count_mismatch(r)
    assert M.token_count_source(r) == "timings"
    m = compute_metrics([r], 100 * MS)
    assert m["itl_ms"]["n"] == 7 and m["chunk_gap_ms"]["n"] == 3
    assert m["itl_ms"]["mean"] == pytest.approx(16.5 / 7)
    assert m["token_count_mismatches"] == 0


def test_per_event_counts_that_do_not_add_up_are_flagged():
    r = per_event(rec([1, 2, 3, 4, 5], "rccud", usage_out=5), [0, 1, 2, 0, 0])
    assert M.token_count_mismatch(r)
    assert compute_metrics([r], 10 * MS)["token_count_mismatches"] == 1
    r = per_event(rec([1, 2, 3, 4, 5], "rccud", usage_out=3), [0, 1, 2, 0, 0], "logprobs")
    assert not M.token_count_mismatch(r) and M.token_count_source(r) == "logprobs"


def test_a_token_event_with_no_new_token_is_not_a_step():
    # Text the server held back (a partial stop string) released without a new token: the
    # event is a chunk but no token arrived with it.
    r = per_event(rec([5, 10, 14, 15, 16], "ccfud", usage_out=2), [1, 1, 0, 0, 0])
    assert M.itl_ms(r) == [5] and M.chunk_gap_ms(r) == [5]


def test_old_records_without_counts_keep_one_token_per_event():
    r = rec([5, 20, 30, 45, 46, 47, 50], "rcccfud", usage_out=3)
    assert M.token_count_source(r) == "events"
    assert M.itl_ms(r) == M.chunk_gap_ms(r) == [10, 15]


def test_output_tokens_falls_back_to_timings_never_to_words():
    r = rec([1, 2, 3], "rcd", timings={"predicted_n": 7})
    assert M.output_tokens(r) == 7
    assert M.output_tokens(rec([1, 2, 3], "rcd")) is None


def test_failed_and_truncated_are_counted_apart():
    good = rec([0.5, 10, 20, 30, 31], "rcccd", usage_out=3, expected=3, id=0)
    failed = rec([0.5, 1], "rc", error="stream ended without [DONE]", expected=3, id=1)
    http = rec([], "", error="HTTP 500: boom", status=500, expected=3, id=2)
    short = rec([0.5, 2, 4, 5], "rccd", usage_out=2, expected=3, id=3)  # stopped early
    m = compute_metrics([good, failed, http, short], 100 * MS)
    assert m["requests_ok"] == 1
    assert m["requests_failed"] == 2
    assert m["requests_truncated"] == 1
    # Only the good request is in the latency figures.
    assert m["ttft_ms"]["n"] == 1 and m["ttft_ms"]["mean"] == 10
    assert m["itl_ms"]["n"] == 2 and m["itl_ms"]["min"] == 10
    assert m["output_tokens"] == 3
    assert m["wall_s"] == pytest.approx(0.1)
    assert m["output_throughput_tok_s"] == pytest.approx(30)
    assert m["request_throughput_rps"] == pytest.approx(10)


def test_open_loop_lateness_and_latency_from_schedule():
    # Scheduled at 10 ms, sent at 14 ms (4 ms late); first token 6 ms after send.
    r = rec([1, 6, 8, 9], "rccd", usage_out=2, scheduled_ns=10 * MS, start_ns=14 * MS)
    assert M.lateness_ms(r) == 4
    assert M.ttft_from_schedule_ms(r) == 10
    assert M.e2e_from_schedule_ms(r) == 13
    m = compute_metrics([r], 20 * MS)
    assert m["lateness_ms"]["mean"] == 4 and m["ttft_from_schedule_ms"]["p50"] == 10
    closed = compute_metrics([rec([1, 6, 8, 9], "rccd", usage_out=2)], 20 * MS)
    assert "lateness_ms" not in closed
    # A request that went out 30 ms late and failed was still late; one never sent has no lateness.
    failed = rec([], "", scheduled_ns=0, start_ns=30 * MS, error="HTTP 503: busy", status=503, id=1)
    unsent = rec([], "", scheduled_ns=0, start_ns=90 * MS, error=NOT_SENT, status=None, id=2)
    m = compute_metrics([r, failed, unsent], 100 * MS)
    assert m["lateness_ms"]["n"] == 2 and m["lateness_ms"]["max"] == 30
    assert m["ttft_from_schedule_ms"]["n"] == 1  # latency figures: good requests only


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 4.0, None, float("nan")])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["min"] == 1 and s["max"] == 4
    assert s["p50"] == 2.5 and s["stdev"] == pytest.approx(1.2909944)
    assert summarize([])["mean"] is None
    assert summarize([5.0])["stdev"] == 0.0


def test_server_timings_ratio():
    a = rec([1, 2, 3, 4], "rccd", usage_out=2, timings={"predicted_per_second": 100.0, "cache_n": 0})
    b = rec([1, 2, 3, 4], "rccd", usage_out=2, timings={"predicted_per_second": 300.0, "cache_n": 5})
    # Client decode: 1 token in (4 - 2) ms after the first -> 500 tok/s for both.
    burst = rec([1, 2, 2.0001, 2.0002], "rccd", usage_out=2, timings={"predicted_per_second": 250.0})
    st = M.server_timings([a, b, burst], client_decode_mean=180.0)
    assert st["predicted_per_second"]["mean"] == pytest.approx(650 / 3)
    # Median of per-request ratios (5, 5/3, and the burst's 2e4): the burst does not swing it.
    assert st["client_server_decode_ratio"] == pytest.approx(5.0)
    assert st["cache_n"]["max"] == 5
    none = rec([1, 2, 3], "rcd", usage_out=1, timings={"predicted_per_second": 100.0})
    assert M.server_timings([none], client_decode_mean=90.0)["client_server_decode_ratio"] == pytest.approx(0.9)


def test_goodput():
    fast = rec([1, 5, 7, 9, 10], "rcccd", usage_out=3, expected=3, id=0)  # ttft 5, tpot 2.5
    slow = rec([1, 50, 52, 54, 55], "rcccd", usage_out=3, expected=3, id=1)  # ttft 50
    failed = rec([1], "r", error="boom", expected=3, id=2)
    one = rec([1, 4, 5], "rcd", usage_out=1, expected=1, id=3)  # no tpot: not a miss
    g = goodput_of([fast, slow, failed, one], {"ttft_ms": 10.0, "tpot_ms": 3.0, "e2e_ms": None}, 2_000 * MS)
    assert g["slo"] == {"ttft_ms": 10.0, "tpot_ms": 3.0}
    assert g["requests"] == 4 and g["requests_good"] == 2
    assert g["share"] == 0.5 and g["rate_rps"] == pytest.approx(1.0)
    assert g["missed"] == {"failed": 1, "ttft_ms": 1, "tpot_ms": 0}  # what kept each one out
    assert goodput_of([fast], {"ttft_ms": None}, MS) is None


def test_open_loop_goodput_counts_from_the_schedule():
    # Sent 30 ms late (it waited for a max_concurrency slot): ttft 5 ms from the send, 35 ms
    # from the schedule. The user waited 35 ms, so a 10 ms TTFT SLO is missed.
    late = rec([1, 5, 7, 9, 10], "rcccd", usage_out=3, expected=3, scheduled_ns=0, start_ns=30 * MS)
    on_time = rec([1, 5, 7, 9, 10], "rcccd", usage_out=3, expected=3, scheduled_ns=10 * MS, start_ns=10 * MS, id=1)
    g = goodput_of([late, on_time], {"ttft_ms": 10.0}, 1_000 * MS)
    assert g["requests_good"] == 1
    e2e = goodput_of([late, on_time], {"e2e_ms": 20.0}, 1_000 * MS)  # e2e 10 ms, 40 from schedule
    assert e2e["requests_good"] == 1
    ttfa = goodput_of([late, on_time], {"ttfa_ms": 10.0}, 1_000 * MS)  # the answer waited too
    assert ttfa["requests_good"] == 1
    closed = rec([1, 5, 7, 9, 10], "rcccd", usage_out=3, expected=3, start_ns=30 * MS)
    assert goodput_of([closed], {"ttft_ms": 10.0}, 1_000 * MS)["requests_good"] == 1


def _stream(*events, step_ms=2):
    """Stamped raw chunks of an SSE stream: one event per chunk, step_ms apart."""
    import json as _json

    out = []
    for i, ev in enumerate(events):
        data = ev if isinstance(ev, str) else _json.dumps(ev)
        out.append(((i + 1) * step_ms * MS, f"data: {data}\n\n".encode()))
    return out


def _delta(text, **extra):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}], **extra}


def test_parse_reads_llama_cpp_per_chunk_counts():
    from benchrun.load.decode import parse_stream

    r = RequestRecord(id=0, status=200)
    parse_stream(r, _stream(_delta("こん", timings={"predicted_n": 3}), _delta("に", timings={"predicted_n": 5}),
                            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                            {"choices": [], "usage": {"completion_tokens": 6, "prompt_tokens": 4},
                             "timings": {"predicted_n": 6}}, "[DONE]"))
    assert r.ok and r.token_source == "timings" and r.event_tokens == [3, 2, 0, 1, 0]
    assert M.itl_ms(r) == pytest.approx([1, 1, 4])  # 2 ms over 2 tokens, then the EOS 4 ms later
    assert not M.token_count_mismatch(r)


def test_parse_ignores_final_only_timings_and_reads_logprobs():
    from benchrun.load.decode import parse_stream

    # Without timings_per_token only the last chunk has timings: that says nothing per chunk.
    r = RequestRecord(id=0, status=200)
    parse_stream(r, _stream(_delta("ab"), _delta("c"), {"choices": [], "usage": {"completion_tokens": 3},
                                                       "timings": {"predicted_n": 3}}, "[DONE]"))
    assert r.event_tokens is None and M.token_count_source(r) == "spread"
    lp = lambda n: {"content": [{"token": "t", "logprob": -0.1}] * n}  # noqa: E731
    r = RequestRecord(id=0, status=200)
    parse_stream(r, _stream({"choices": [{"index": 0, "delta": {"content": "ab"}, "logprobs": lp(2)}]},
                            {"choices": [{"index": 0, "delta": {"content": "c"}, "logprobs": lp(1)}]},
                            {"choices": [], "usage": {"completion_tokens": 3}}, "[DONE]"))
    assert r.token_source == "logprobs" and r.event_tokens == [2, 1, 0, 0]
    assert not M.token_count_mismatch(r) and M.itl_ms(r) == [2]


def test_failures_grouped_by_cause_with_the_servers_numbers():
    body = ('{"error":{"code":400,"message":"request (1084 tokens) exceeds the available context size '
            '(1024 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":1084,"n_ctx":1024}}')
    recs = [rec([], "", error=f"HTTP 400: {body}", status=400, id=0),
            rec([], "", error=f"HTTP 400: {body.replace('1084', '1200')}", status=400, id=1),
            rec([], "", error="read timeout: the server stopped sending", id=2),
            rec([], "", error="HTTP 503: not json", status=503, id=3),
            rec([1, 2, 3], "rcd", usage_out=1, id=4)]
    f = failures_by_cause(recs)
    assert [(x["cause"], x["count"]) for x in f] == [("HTTP 400 exceed_context_size_error", 2),
                                                       ("HTTP 503 status 503", 1), ("read timeout", 1)]
    ctx = f[0]
    assert ctx["n_ctx"] == 1024 and ctx["n_prompt_tokens"] == 1200 and "1084 tokens" in ctx["message"]
    assert "model.ctx_size" in ctx["fix"]
    assert "server.log" in f[1]["fix"] and "request_timeout_s" in f[2]["fix"]
    assert compute_metrics(recs, 10 * MS)["failures"] == f


def test_cut_at_max_tokens_only_where_no_exact_length_was_asked():
    r = rec([1, 2, 3, 4], "rcfd", usage_out=1)
    r.finish_reason = "length"
    assert M.cut_at_max_tokens(r)
    r.expected_tokens = 1  # synthetic: length is the point, not a cut
    assert not M.cut_at_max_tokens(r)


def test_report_explains_multi_token_events_and_failure_causes():
    from benchrun.report.findings import cause_line

    f = failures_by_cause([rec([], "", status=400, id=0, error='HTTP 400: {"error":{"code":400,"message":"too long",'
                                                            '"type":"exceed_context_size_error","n_prompt_tokens":300,"n_ctx":256}}')])
    line = cause_line(f[0])
    assert line.startswith("1 x HTTP 400 exceed_context_size_error (prompt 300 tokens, slot context 256)")
    assert '"too long"' in line and "Fix: " in line


def test_events_in_one_read_are_one_step():
    """A busy client reads a fast server's events in batches: events stamped in one read carry
    no timing of their own. The 5 tokens read together with the first count in TTFT (not as
    decoded after it), and the rest of the stream is divided over the tokens that came later."""
    # first read: 6 token events at 20 ms; then one per read at 30, 40, 50, 60; [DONE] at 60.
    r = rec([1, 20, 20, 20, 20, 20, 20, 30, 40, 50, 60, 60], "rccccccccccd", usage_out=10)
    assert M.ttft_ms(r) == 20
    assert M.tpot_ms(r) == pytest.approx((60 - 20) / 4)  # not / 9
    assert M.itl_ms(r) == [10, 10, 10, 10]  # no zero gaps for events that came together
    assert M.chunk_gap_ms(r)[:5] == [0, 0, 0, 0, 0]  # the event rhythm itself stays as seen
    # Everything in one read (events or not): no decoding seen, no rate.
    one = rec([1, 20, 20, 20, 20], "rcccd", usage_out=3)
    assert M.tpot_ms(one) is None and M.itl_ms(one) == []
