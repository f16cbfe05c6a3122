"""/metrics scraping: the parser, the deltas, and a real llama.cpp server."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from benchrun.promscrape import Scraper, parse_prometheus, summarize_scrapes
from conftest import serve_app

TEXT = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {pt}
llamacpp:prompt_seconds_total {ps}
llamacpp:tokens_predicted_total {tp}
llamacpp:tokens_predicted_seconds_total {ts}
llamacpp:n_decode_total {nd}
llamacpp:predicted_tokens_seconds 99999
llamacpp:requests_processing {rp}
llamacpp:requests_deferred {rd}
other{{label="x"}} 5
"""


def page(pt=0, ps=0.0, tp=0, ts=0.0, nd=0, rp=0, rd=0):
    return TEXT.format(pt=pt, ps=ps, tp=tp, ts=ts, nd=nd, rp=rp, rd=rd)


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


async def _scrape_app(app, interval=0.02, work=0.15):
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        s = Scraper(session, url, interval)
        await s.start()
        await asyncio.sleep(work)
        return await s.stop()


def test_scraper_against_a_fake_server_with_growing_counters():
    n = {"calls": 0}

    async def metrics(request):
        n["calls"] += 1
        k = n["calls"]
        return web.Response(text=page(pt=10 * k, ps=0.1 * k, tp=5 * k, ts=0.05 * k, nd=5 * k, rp=k % 4))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    out = asyncio.run(_scrape_app(app))
    assert out["available"] and out["scrapes"] == n["calls"] >= 4  # start, periodic, end
    assert out["counters"]["prompt_tokens_total"] == 10 * (n["calls"] - 1)
    assert out["peaks"]["requests_processing"] == 3


def test_scraper_without_metrics_endpoint():
    out = asyncio.run(_scrape_app(web.Application(), work=0.01))
    assert out == {"available": False, "reason": out["reason"]}
    assert "404" in out["reason"]


def test_scraper_on_real_llama_cpp(tiny_server):
    from benchrun.client import RequestSpec, build_body, make_session, send
    from benchrun.records import RequestRecord

    async def go():
        async with make_session(60, {}) as session:
            s = Scraper(session, tiny_server.url, 0.05)
            assert await s.start()
            spec = RequestSpec(messages=[{"role": "user", "content": "hi there"}], max_tokens=12,
                               body={"ignore_eos": True, "cache_prompt": False})
            recs = await asyncio.gather(*(send(session, tiny_server.url + "/v1/chat/completions",
                                               build_body(spec), RequestRecord(id=i)) for i in range(3)))
            return recs, await s.stop()

    recs, out = asyncio.run(go())
    assert all(r.ok for r in recs)
    assert out["available"]
    assert out["counters"]["tokens_predicted_total"] == 36
    assert out["counters"]["prompt_tokens_total"] == sum(r.usage["prompt_tokens"] for r in recs)
    assert out["counters"]["n_decode_total"] >= 12
    assert out["predicted_tok_s"] > 0
