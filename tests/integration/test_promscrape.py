"""/metrics scraping: the parser, the deltas, and a real llama.cpp server.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_promscrape.py."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from support import serve_app, until
from support.fakes import page

from benchrun.measure.promscrape import Scraper


async def _scrape_app(app, interval=0.02, until_=None):
    """Start a Scraper on the app, wait until `until_()` holds (the scrapes the test needs to
    see, however slowly a busy loop gets to them), stop it and return its summary."""
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        s = Scraper(session, url, interval)
        await s.start()
        if until_ is not None:
            await until(until_, 30, "the periodic scrapes")
        return await s.stop()


def test_scraper_against_a_fake_server_with_growing_counters():
    n = {"calls": 0}

    async def metrics(request):
        n["calls"] += 1
        k = n["calls"]
        return web.Response(text=page(pt=10 * k, ps=0.1 * k, tp=5 * k, ts=0.05 * k, nd=5 * k, rp=k % 4))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    # The start scrape, then periodic ones until the gauge's peak (call 3) has been read.
    out = asyncio.run(_scrape_app(app, until_=lambda: n["calls"] >= 3))
    assert out["available"] and out["scrapes"] == n["calls"] >= 4  # start, periodic, end
    assert out["counters"]["prompt_tokens_total"] == 10 * (n["calls"] - 1)
    assert out["peaks"]["requests_processing"] == 3


def test_scraper_without_metrics_endpoint():
    out = asyncio.run(_scrape_app(web.Application()))
    assert out == {"available": False, "reason": out["reason"]}
    assert "404" in out["reason"]


def test_scraper_on_real_llama_cpp(tiny_server):
    from benchrun.load.client import RequestSpec, build_body, make_session, send
    from benchrun.load.records import RequestRecord

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
