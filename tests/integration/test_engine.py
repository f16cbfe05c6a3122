"""Load shapes: closed loop, open loop schedules and lateness, duration limit, multi-turn.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_engine.py."""
from __future__ import annotations

from time import perf_counter_ns

import numpy as np
import pytest
from support import LoopLag, timedserver

from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.load.records import NOT_SENT
from benchrun.measure import metrics as M
from benchrun.measure.catalogue import compute_metrics
from benchrun.measure.stats import goodput_of


def _conv(rid, ttft_ms=5.0, itl_ms=2.0, tokens=4, turns=1, seen=None):
    for t in range(turns):
        rec = yield RequestSpec(messages=[{"role": "user", "content": f"turn {t}"}], max_tokens=tokens,
                                body={"rid": f"{rid}.{t}", "ttft_ms": ttft_ms, "itl_ms": itl_ms},
                                tags={"rid": rid, "turn": t}, expected_tokens=tokens)
        if seen is not None:
            seen.append((rid, t, rec.ok, len(rec.text)))


@pytest.fixture(scope="module")
def timed_url():
    with timedserver.running() as url:
        yield url


def _run(url, convs, plan):
    async def go():
        async with make_session(30, {}) as session:
            return await Engine(session, url + "/v1/chat/completions").run(convs, plan)

    return run_loop(go())


def _run_watched(url, convs, plan):
    """_run, with the loop's own lag measured beside it (support.LoopLag) and the moment
    run() returned: (records, wall_ns, lag, returned_ns)."""
    async def go():
        async with LoopLag() as lag, make_session(30, {}) as session:
            recs, wall = await Engine(session, url + "/v1/chat/completions").run(convs, plan)
            return recs, wall, lag, perf_counter_ns()

    return run_loop(go())


def _max_overlap(records):
    ev = sorted([(r.start_ns, 1) for r in records] + [(r.end_ns, -1) for r in records])
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


def test_closed_loop_keeps_exactly_concurrency_in_flight(timed_url):
    recs, _ = _run(timed_url, [_conv(i, ttft_ms=20) for i in range(12)], LoadPlan(concurrency=3))
    assert len(recs) == 12 and all(r.ok for r in recs)
    assert _max_overlap(recs) == 3
    assert len({r.id for r in recs}) == 12
    assert all(r.scheduled_ns is None for r in recs)


def test_no_hidden_client_queue_above_100_connections():
    """aiohttp's default connector queues request 101+; ours must not. The server holds every
    request until all 130 are inside it at once (or gives up after 20 s): a condition, no clock."""
    import asyncio
    import json

    from aiohttp import web
    from support import serve_app

    n, inside, peak, everyone = 130, 0, 0, None

    async def chat(request):
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        if inside == n:
            everyone.set()
        try:
            await asyncio.wait_for(everyone.wait(), 20)
        except asyncio.TimeoutError:
            pass
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for ev in ({"choices": [{"delta": {"content": "x"}, "finish_reason": None}]},
                   {"choices": [{"delta": {}, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}):
            await resp.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        inside -= 1
        return resp

    async def go():
        nonlocal everyone
        everyone = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        async with serve_app(app) as url, make_session(60, {}) as session:
            return await Engine(session, url + "/v1/chat/completions").run(
                [_conv(i, tokens=1) for i in range(n)], LoadPlan(concurrency=n))

    recs, _ = run_loop(go())
    assert len(recs) == n and all(r.ok for r in recs)
    assert peak == n


def test_open_loop_records_schedule_and_lateness(timed_url):
    """Sent on schedule, never early; how late is judged against the loop's own lag in this
    run (support.LoopLag: a stalled loop holds every timer up alike), plus the 0.5 ms the engine
    deliberately waits past each due time and a tenth of the arrival gap for its own work
    before the send is stamped. A schedule kept in the wrong unit, sleeps that drift, or a send
    that waits for anything else is later than that."""
    gap_ms = 25.0
    recs, wall, lag, _ = _run_watched(timed_url, [_conv(i) for i in range(15)],
                                      LoadPlan(rate=1000 / gap_ms, arrival="constant"))
    assert len(recs) == 15 and all(r.ok for r in recs)
    sched = sorted(r.scheduled_ns for r in recs)
    assert np.diff(sched) / 1e6 == pytest.approx([gap_ms] * 14, abs=0.01)
    late = [M.lateness_ms(r) for r in recs]
    own = 0.5 + gap_ms / 10
    assert min(late) >= 0
    assert np.median(late) < own + lag.quantile(0.5), (late, lag.quantile(0.5))
    for r in recs:  # each one: no later than the loop let it be while it was due
        assert M.lateness_ms(r) < own + lag.worst(r.scheduled_ns, r.start_ns), (
            M.lateness_ms(r), lag.worst(r.scheduled_ns, r.start_ns))
    m = compute_metrics(recs, wall)
    assert m["lateness_ms"]["n"] == 15
    assert m["ttft_from_schedule_ms"]["mean"] >= m["ttft_ms"]["mean"]


def test_open_loop_cap_shows_up_as_lateness(timed_url):
    """With a cap of 1 and requests slower than the arrival rate, the backlog is not hidden:
    lateness grows request by request and latency from the schedule grows with it."""
    recs, _ = _run(timed_url, [_conv(i, ttft_ms=40, tokens=2) for i in range(6)],
                   LoadPlan(rate=100.0, arrival="constant", max_concurrency=1))
    recs.sort(key=lambda r: r.scheduled_ns)
    late = [M.lateness_ms(r) for r in recs]
    assert _max_overlap(recs) == 1
    assert all(b > a for a, b in zip(late, late[1:]))
    assert late[-1] > 5 * 30  # each request takes >= 42 ms but they were due every 10 ms
    assert M.ttft_from_schedule_ms(recs[-1]) > M.ttft_ms(recs[-1]) + 150


def test_open_loop_arrivals_stuck_behind_the_cap_at_the_deadline_are_failures(timed_url):
    """Due every 20 ms, served one at a time at >= 100 ms each, stopped at 0.3 s: the arrivals
    still queued for the slot at the deadline are recorded as failed, never silently dropped."""
    recs, _, lag, _ = _run_watched(timed_url, [_conv(i, ttft_ms=100, tokens=2) for i in range(20)],
                                   LoadPlan(rate=50.0, arrival="constant", max_concurrency=1, duration_s=0.3))
    t0 = min(x.scheduled_ns for x in recs)  # the engine's start: the first arrival is due at once
    deadline = t0 + int(0.3e9)
    arrived = [r for r in recs if r.scheduled_ns < deadline]
    assert len(recs) == len(arrived) == 15  # every arrival before the deadline, and only those
    sent, unsent = [r for r in recs if r.ok], [r for r in recs if not r.ok]
    assert len(sent) + len(unsent) == 15
    # One at a time: the first at once, then one more for each slot freed before the deadline
    # (none for a slot freed after it). A slot freed just before it may be taken only after it
    # if the loop was stalled then, so only those freed earlier than that stall must be used.
    assert sorted(r.start_ns for r in sent) == [r.start_ns for r in sorted(sent, key=lambda r: r.end_ns)]
    assert len(sent) <= 1 + sum(r.end_ns < deadline for r in sent)
    assert len(sent) >= 1 + sum(r.end_ns + lag.worst(r.end_ns, deadline) * 1e6 < deadline for r in sent)
    assert all(r.error == NOT_SENT and r.event_ns == [] for r in unsent)
    m = compute_metrics(recs, 10**9)
    assert m["requests_failed"] == len(unsent) and m["ttft_ms"]["n"] == len(sent)
    assert goodput_of(recs, {"e2e_ms": 10_000}, 10**9)["share"] == pytest.approx(len(sent) / 15)


def test_duration_limit_stops_new_requests(timed_url):
    recs, wall, lag, returned = _run_watched(timed_url, [_conv(i, ttft_ms=50, tokens=2) for i in range(100)],
                                             LoadPlan(concurrency=2, duration_s=0.3))
    assert 2 <= len(recs) < 20
    t0 = min(r.start_ns for r in recs)
    # A slot freed before the deadline may start a request; one freed after it may not. (The
    # first start t0 is no earlier than the engine's clock start, so this never overcounts.)
    freed_in_time = sum(1 for r in recs if r.end_ns - t0 <= 0.3e9)
    assert len(recs) <= 2 + freed_in_time
    # Then it stops: no wait for the rest. Waiting for even one more request would cost at least
    # what the quickest request of this run took; the loop's own lag meanwhile is allowed for.
    last = max(r.end_ns for r in recs)
    assert returned - wall <= t0  # wall is counted from the engine's start, before any send
    assert (returned - last) / 1e6 < min(M.e2e_ms(r) for r in recs) + lag.worst(last, returned), (
        (returned - last) / 1e6, lag.worst(last, returned))


def test_multi_turn_conversation_receives_each_record(timed_url):
    seen = []
    recs, _ = _run(timed_url, [_conv(i, turns=3, seen=seen) for i in range(2)], LoadPlan(concurrency=2))
    assert len(recs) == 6
    assert sorted(seen) == [(i, t, True, 4) for i in range(2) for t in range(3)]
    for rid in range(2):
        turns = sorted((r for r in recs if r.tags["rid"] == rid), key=lambda r: r.tags["turn"])
        assert all(b.start_ns >= a.end_ns for a, b in zip(turns, turns[1:]))  # strictly in order


def test_unreachable_server_is_data_not_an_exception():
    from benchrun.servers.base import free_port

    recs, _ = _run(f"http://127.0.0.1:{free_port()}", [_conv(0)], LoadPlan())
    assert len(recs) == 1 and not recs[0].ok and "Connect" in recs[0].error


def test_a_stalled_stream_is_a_read_timeout_and_the_run_goes_on(timed_url):
    async def go():
        async with make_session(0.4, {}) as session:  # sock_read = the stall limit
            eng = Engine(session, timed_url + "/v1/chat/completions")
            assert eng._watch is not None  # enforced by the watchdog, not per chunk
            return await eng.run([_conv(0, ttft_ms=10_000), _conv(1, ttft_ms=5)], LoadPlan(concurrency=2))

    recs, wall = run_loop(go())
    by = {r.tags["rid"]: r for r in recs}
    assert by[0].error == "read timeout: the server stopped sending"
    assert by[1].ok
    assert 0.4e9 < wall < 10e9  # cut at the stall limit, not when the server sends after 10 s


def test_unread_replies_are_decoded_after_the_run(timed_url):
    seen = []

    def conv(i):
        yield RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=3,
                          body={"rid": i, "ttft_ms": 5, "itl_ms": 1}, reply_needed=False)

    async def go():
        async with make_session(30, {}) as session:
            eng = Engine(session, timed_url + "/v1/chat/completions",
                         on_record=lambda r: seen.append((r.id, r.text, len(eng._deferred))))
            return await eng.run([conv(i) for i in range(4)], LoadPlan(concurrency=2))

    recs, _ = run_loop(go())
    assert all(r.ok and r.text == "xxx" and r.event_kinds.count("c") == 3 for r in recs)
    assert sorted(i for i, _, _ in seen) == [0, 1, 2, 3]  # every record reached on_record
    assert all(text == "xxx" for _, text, _ in seen)


@pytest.mark.slow
def test_job_warmup_repeats_ci_goodput_and_server_metrics(cli):
    """One real job: warm-up kept apart, two repeats with CIs, goodput, /metrics deltas,
    and exact prompt lengths -- all in result.json."""
    import json

    from support import output_dir_of

    proc, cwd = cli("model=tiny", "concurrency=2", "repeats=2", "workload.requests=4",
                    "workload.output_tokens=96", "workload.input_tokens=100", "load.warmup_requests=1",
                    "slo.ttft_ms=60000", "slo.e2e_ms=60000", "load.metrics_interval_s=0.01")
    assert proc.returncode == 0, proc.stderr
    job = next((cwd / output_dir_of(proc.stdout)).glob("0_*"))
    res = json.loads((job / "result.json").read_text())
    assert res["status"] == "ok"
    lines = [json.loads(x) for x in (job / "requests.jsonl").read_text().splitlines()]
    assert len(lines) == 9 and sum(x["warmup"] for x in lines) == 1
    m = res["metrics"]
    assert m["requests_ok"] == 8 and m["requests_failed"] == 0 and m["requests_truncated"] == 0
    assert m["input_tokens"] == 8 * 100 and m["output_tokens"] == 8 * 96  # exact, from usage
    assert [rm["requests_ok"] for rm in res["repeat_metrics"]] == [4, 4]
    ci = res["repeats_ci95"]["ttft_ms.p50"]
    assert ci["n"] == 2 and ci["low"] <= ci["mean"] <= ci["high"]
    assert res["repeats_ci95"]["output_throughput_tok_s"]["n"] == 2
    g = res["goodput"]
    assert g["share"] == 1.0 and g["slo"] == {"ttft_ms": 60000.0, "e2e_ms": 60000.0}
    assert g["rate_rps"] == pytest.approx(m["request_throughput_rps"])
    sm = res["server_metrics"]
    assert sm["available"] and sm["counters"]["tokens_predicted_total"] == 8 * 96  # warm-up excluded
    assert sm["counters"]["prompt_tokens_total"] == 8 * 100
    # A sampled gauge: 96-token replies span many 10 ms scrapes, so one sees them in flight.
    assert 1 <= sm["peaks"]["requests_processing"] <= 2
    assert res["workload"]["prompt_tokens_method"] == "tokenize"


def test_http_errors_and_broken_streams_are_data(timed_url):
    """An HTTP error status and a server that dies mid-stream: recorded, never raised."""
    import asyncio

    from aiohttp import web
    from support import serve_app

    async def broken(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
        await asyncio.sleep(0.05)
        request.transport.close()  # gone, without the terminal chunk or [DONE]
        return resp

    async def go():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", broken)
        async with serve_app(app) as url, make_session(30, {}) as session:
            bad = await Engine(session, timed_url + "/nope").run([_conv(0)], LoadPlan())
            cut = await Engine(session, url + "/v1/chat/completions").run([_conv(1)], LoadPlan())
            return bad[0][0], cut[0][0]

    bad, cut = run_loop(go())
    assert bad.status == 404 and bad.error.startswith("HTTP 404") and not bad.ok
    assert not cut.ok and cut.error
    assert cut.event_kinds.startswith("c") and cut.text == "x"  # what did arrive is kept
