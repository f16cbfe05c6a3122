"""/metrics scraping without a server: the Prometheus text parser, and the deltas and peaks
between scrapes.
This half needs no server, process or socket; the rest is in tests/integration/test_promscrape.py."""
from __future__ import annotations

import pytest
from support.fakes import page

from benchrun.measure.promscrape import parse_prometheus, summarize_scrapes


def test_parse_prometheus():
    s = parse_prometheus(page(pt=30, ps=0.5, rp=2))
    assert s["prompt_tokens_total"] == 30 and s["prompt_seconds_total"] == 0.5
    assert s["requests_processing"] == 2
    assert "other" not in s and not any(k.startswith("#") for k in s)
    assert s['other{label="x"}'] == 5  # a labelled sample keeps its labels


def test_parse_prometheus_labels_as_other_servers_write_them():
    text = ('# TYPE vllm:num_requests_running gauge\n'
            'vllm:num_requests_running{model_name="qwen",engine="0"} 3.0\n'
            'vllm:num_requests_running{model_name="gemma",engine="0"} 1\n'
            'vllm:e2e_request_latency_seconds_bucket{le="0.5",model_name="qwen"} 7\n')
    s = parse_prometheus(text)
    assert s['vllm:num_requests_running{engine="0",model_name="qwen"}'] == 3.0
    assert s['vllm:num_requests_running{engine="0",model_name="gemma"}'] == 1.0
    assert s['vllm:e2e_request_latency_seconds_bucket{le="0.5",model_name="qwen"}'] == 7.0
    with pytest.raises(ValueError):
        parse_prometheus("<html>not metrics</html>\n")


def test_deltas_and_peaks():
    a = parse_prometheus(page(pt=100, ps=1.0, tp=50, ts=2.0, nd=50))
    mid = parse_prometheus(page(pt=200, ps=1.5, tp=80, ts=2.5, nd=60, rp=3, rd=1))
    b = parse_prometheus(page(pt=300, ps=2.0, tp=150, ts=3.0, nd=75, rp=0))
    out = summarize_scrapes(a, b, [a, mid, b], 0.5)
    assert out["counters"]["prompt_tokens_total"] == 200
    assert out["counters"]["tokens_predicted_total"] == 100
    assert out["peaks"] == {"requests_processing": 3, "requests_deferred": 1}
    assert out["prompt_tok_s"] == pytest.approx(200)
    assert out["predicted_tok_s"] == pytest.approx(100)  # from counters, not the 99999 gauge
    assert out["predicted_ms_per_token"] == pytest.approx(10)
    assert out["tokens_per_decode"] == pytest.approx(4)


def test_predicted_ms_per_token_is_per_token_not_per_decode_step():
    """The rule docs/measurement.md states: llama.cpp's generation-time counter spans n - 1 decode
    steps per request (the first token comes from the prompt's logits) and its token counter n
    tokens, so /metrics' ms per token is (n - 1)/n of the per-step time. Two 64-token replies
    at exactly 10 ms a step: 630 ms each over 63 steps."""
    a = parse_prometheus(page(tp=0, ts=0.0, nd=0))
    b = parse_prometheus(page(tp=128, ts=1.26, nd=2 * 64))
    out = summarize_scrapes(a, b, [a, b], 0.5)
    assert out["predicted_ms_per_token"] == pytest.approx(1260 / 128)  # 9.84 ms, not the 10 ms a step
    assert out["predicted_ms_per_token"] == pytest.approx(10 * 63 / 64)  # 1.6% low
    assert out["predicted_tok_s"] == pytest.approx(128 / 1.26)  # and the rate 1.6% high
    assert "requests" not in out["counters"]  # nothing on the page counts requests: no n - 1 to form
