"""Worker processes (load.workers), their pure parts: splitting the concurrency and the one
open-loop schedule, dealing conversations, reading fixed conversations as specs, merging
records, `auto`'s choice, the merged self-check, and the engine honouring a worker's share
(start time, offsets, ids). No process is started here: tests/integration/test_workers.py runs
real jobs with workers."""
from __future__ import annotations

import asyncio
import pickle
import signal
import sys
import time
from array import array
from collections import Counter
from time import perf_counter_ns
from types import SimpleNamespace

import pytest
from support import agentic_workload

from benchrun.config import workers_setting
from benchrun.load import engine as engine_mod
from benchrun.load import workers as W
from benchrun.load import workshare as S
from benchrun.load.client import RequestSpec
from benchrun.load.engine import Engine, LoadPlan, arrival_offsets_ns
from benchrun.load.records import RequestRecord
from benchrun.load.selfcheck import CPU_PCT, summary_of
from benchrun.workloads import make_workload
from benchrun.workloads.base import fixed


def _spec(i: int) -> RequestSpec:
    return RequestSpec(messages=[{"role": "user", "content": str(i)}], max_tokens=4, tags={"index": i},
                       reply_needed=False)


def test_shares_split_evenly_larger_first():
    assert S.shares(5, 2) == [3, 2]
    assert S.shares(4, 2) == [2, 2]
    assert S.shares(256, 3) == [86, 85, 85]
    assert sum(S.shares(7, 4)) == 7


def test_deal_gives_each_conversation_once_in_proportion_to_the_shares():
    assert S.deal(6, [2, 1]) == [[0, 1, 3, 4], [2, 5]]
    assert S.deal(4, [1, 1]) == [[0, 2], [1, 3]]
    dealt = S.deal(1000, [3, 2])
    assert sorted(i for part in dealt for i in part) == list(range(1000))
    assert [len(p) for p in dealt] == [600, 400]
    # spread over the run's order: each worker's conversations are not one block
    assert max(dealt[1]) > 990 and min(dealt[1]) < 5


def test_closed_loop_parts_split_the_concurrency_and_keep_conversations_whole():
    convs = [[_spec(i), _spec(i + 100)] for i in range(10)]
    parts = S.worker_parts(LoadPlan(concurrency=5), convs, 2, repeat=0)
    assert [p.concurrency for p, _ in parts] == [3, 2]
    got = [c for _, cs in parts for c in cs]
    assert sorted(c[0].tags["index"] for c in got) == list(range(10))
    assert all(c[1].tags["index"] == c[0].tags["index"] + 100 for c in got)  # a conversation stays together
    assert all(p.offsets_ns is None and p.start_ns is None for p, _ in parts)


@pytest.mark.parametrize("arrival", ["poisson", "constant"])
def test_open_loop_parts_are_one_schedule_dealt_round_robin(arrival):
    convs = [[_spec(i)] for i in range(11)]
    plan = LoadPlan(rate=7.5, arrival=arrival, seed=3, max_concurrency=5)
    parts = S.worker_parts(plan, convs, 2, repeat=2)
    one = arrival_offsets_ns(11, 7.5, arrival, 3 + 2)  # what the in-process engine would draw
    assert [p.max_concurrency for p, _ in parts] == [3, 2]
    merged = sorted((off, c[0].tags["index"]) for p, cs in parts for off, c in zip(p.offsets_ns, cs))
    assert [off for off, _ in merged] == one  # together, exactly the arrival process asked for
    assert [i for _, i in merged] == list(range(11))  # arrival i is conversation i
    assert [c[0].tags["index"] for c in parts[0][1]] == [0, 2, 4, 6, 8, 10]
    assert S.worker_parts(LoadPlan(rate=1.0), convs, 3, 0)[0][0].max_concurrency is None


def test_merge_records_by_send_time_then_id():
    a = [RequestRecord(id=0, start_ns=30), RequestRecord(id=2, start_ns=10)]
    b = [RequestRecord(id=1, start_ns=20), RequestRecord(id=3, start_ns=10)]
    assert [r.id for r in S.merge_records([a, b])] == [2, 3, 1, 0]


def test_fixed_specs_reads_fixed_conversations_without_running_them(compose):
    convs = [fixed([_spec(0), _spec(1)]), fixed([_spec(2)])]
    specs = S.fixed_specs(convs)
    assert [[s.tags["index"] for s in c] for c in specs] == [[0, 1], [2]]
    assert pickle.loads(pickle.dumps(convs[0])).specs == convs[0].specs  # it can travel to a worker
    assert next(convs[0]).tags["index"] == 0  # still usable in-process
    assert S.fixed_specs(convs) is None  # a started conversation cannot move

    def own():
        yield _spec(0)

    assert S.fixed_specs([own()]) is None
    # The shipped workloads: synthetic is fixed; agentic conversations are built from replies.
    syn = make_workload(compose(["workload.requests=3"]).workload, 2)
    assert len(S.fixed_specs(syn.conversations(0))) == 3
    ag = make_workload(agentic_workload([{"name": "a", "turns": ["x", "y"]},
                                         {"name": "b", "needs": ["a"], "turns": ["{{ a.last }}"]}]), 2)
    assert S.fixed_specs(ag.conversations(0)) is None


def test_auto_takes_one_worker_unless_one_core_may_not_keep_up():
    n, why = S.choose("auto", why_one=None, cores=2, streams=4, limit=4, warmup_cpu_pct=3.0)
    assert n == 1 and "one core keeps up" in why and f"{S.AUTO_STREAMS}" in why
    n, why = S.choose("auto", why_one=None, cores=8, streams=S.AUTO_STREAMS, limit=1000)
    assert n == S.AUTO_MAX and "requests in flight" in why and "8 usable cores" in why
    n, why = S.choose("auto", why_one=None, cores=2, streams=256, limit=256)
    assert n == 2
    n, why = S.choose("auto", why_one=None, cores=2, streams=1, limit=1, warmup_cpu_pct=CPU_PCT)
    assert n == 1 and "no more workers than" in why  # the hot warm-up asks for 2, one stream allows 1
    n, why = S.choose("auto", why_one=None, cores=4, streams=8, limit=8, warmup_cpu_pct=95.0)
    assert n == 4 and "warm-up alone" in why
    n, why = S.choose("auto", why_one=None, cores=1, streams=512, limit=512)
    assert n == 1 and "one core" in why
    n, why = S.choose("auto", why_one="replies feed the next turn", cores=8, streams=512, limit=512)
    assert (n, why) == (1, "auto: 1 worker: replies feed the next turn")
    assert S.choose("auto", why_one=None, cores=4, streams=None, limit=9)[0] == 1  # unknown load: one


def test_a_fixed_worker_count_is_kept_within_what_the_load_can_be_split_over():
    assert S.choose(1, why_one="x", cores=2, streams=9, limit=9) == (1, "load.workers=1")
    assert S.choose(3, why_one=None, cores=2, streams=9, limit=9) == (3, "load.workers=3")  # as asked
    n, why = S.choose(4, why_one=None, cores=8, streams=2, limit=2)
    assert n == 2 and why.startswith("load.workers=4; 2: no more workers")
    n, why = S.choose(2, why_one="built from replies", cores=8, streams=9, limit=9)
    assert n == 1 and why == "load.workers=2, but 1 worker: built from replies"


def test_streams_and_split_limit():
    assert S.streams_of(LoadPlan(concurrency=7), None) == 7
    assert S.streams_of(LoadPlan(rate=10.0, max_concurrency=3), 2.0) == 3
    assert S.streams_of(LoadPlan(rate=10.0), 2.05) == 21  # Little's law from the warm-up's e2e
    assert S.streams_of(LoadPlan(rate=10.0), None) is None
    assert S.split_limit(LoadPlan(concurrency=8), 3) == 3  # each worker needs a conversation
    assert S.split_limit(LoadPlan(concurrency=2), 30) == 2  # ... and a slot
    assert S.split_limit(LoadPlan(rate=5.0), 30) == 30
    assert S.split_limit(LoadPlan(rate=5.0, max_concurrency=4), 30) == 4


def test_workers_setting():
    assert workers_setting(1) == 1 and workers_setting("3") == 3
    assert workers_setting("auto") == "auto" and workers_setting("AUTO") == "auto"
    for bad in (0, -1, "two", True, 1.5, None):
        with pytest.raises(ValueError, match="load.workers must be a positive integer or auto"):
            workers_setting(bad)


def test_workers_in_the_composed_config(compose):
    from benchrun.config import validate

    assert compose([]).load.workers == 1
    assert compose(["load.workers=auto"]).load.workers == "auto"
    cfg = compose(["load.workers=0"])
    with pytest.raises(ValueError, match="load.workers"):
        validate(cfg)


def test_death_cause_names_the_worker_and_the_signal():
    s = W.death_cause(1, 2, 4242, -signal.SIGKILL, "during repeat 0")
    assert s == "worker process 2 of 2 (pid 4242) was killed by SIGKILL during repeat 0"
    s = W.death_cause(0, 3, 7, 1, "before it was ready", "Traceback...\n  File x\nImportError: no aiohttp\n")
    assert s == "worker process 1 of 3 (pid 7) exited with code 1 before it was ready: ImportError: no aiohttp"


def test_merged_self_check_pools_lags_and_keeps_the_busiest_process():
    quiet = (array("q", [1_000_000] * 99 + [2_000_000]).tobytes(), 0.1, 1_000_000_000)  # 10% of a core
    busy = (array("q", [30_000_000] * 10).tobytes(), 0.95, 1_000_000_000)  # 95%
    out = summary_of([quiet, busy])
    assert out["loop_lag_ms"]["n"] == 110 and out["loop_lag_ms"]["max"] == 30.0
    assert out["cpu_pct"] == 95.0 and out["saturated"] is True and "95% of a core" in out["why"]
    assert [w["cpu_pct"] for w in out["workers"]] == [10.0, 95.0]
    assert "workers" not in summary_of([quiet])  # one process: the block as it always was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the clock's name is Linux's")
def test_the_engine_clock_is_the_same_in_every_process():
    # perf_counter_ns stamps every record; CLOCK_MONOTONIC is system-wide, so times taken in
    # different worker processes compare directly.
    assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
    assert abs(time.perf_counter_ns() - time.monotonic_ns()) < 50_000_000


def test_the_engine_runs_a_workers_share_from_the_common_start(monkeypatch):
    """A worker's plan: start at an absolute time, send at its offsets of the one schedule,
    number records from its id_start by the worker count. The network is a stub."""
    sent = []

    async def fake_fetch(session, url, body, rec, watch=None):
        rec.start_ns = rec.end_ns = perf_counter_ns()
        sent.append(rec)
        return []

    monkeypatch.setattr(engine_mod, "fetch", fake_fetch)
    session = SimpleNamespace(timeout=SimpleNamespace(sock_read=None))

    async def go():
        eng = Engine(session, "http://x/v1/chat/completions", id_start=5, id_step=2)
        start = perf_counter_ns() + 30_000_000
        plan = LoadPlan(rate=1.0, start_ns=start, offsets_ns=[0, 20_000_000, 45_000_000])
        recs, wall = await eng.run([fixed([_spec(i)]) for i in range(3)], plan)
        return start, recs, wall

    start, recs, wall = asyncio.run(go())
    assert [r.id for r in recs] == [5, 7, 9]
    assert [r.scheduled_ns - start for r in recs] == [0, 20_000_000, 45_000_000]
    assert all(r.start_ns >= r.scheduled_ns for r in recs)  # never early, also for the first
    assert wall >= 45_000_000
    ids = Counter(r.id for r in recs)
    assert max(ids.values()) == 1
