"""Synthetic prompts hit workload.input_tokens exactly on a real llama.cpp server."""
from __future__ import annotations

import asyncio

import pytest
from support import timedserver

from benchrun.config import WorkloadConfig
from benchrun.load.client import build_body, make_session, send
from benchrun.load.records import RequestRecord
from benchrun.servers.tokenizer import LlamaCppTokenizer
from benchrun.workloads import make_workload


def workload(**kw):
    cfg = WorkloadConfig(name="synthetic", **{"requests": 3, "output_tokens": 2, **kw})
    return make_workload(cfg, 1)


def _send_all(url, specs):
    async def go():
        async with make_session(60, {}) as session:
            return await asyncio.gather(*(send(session, url + "/v1/chat/completions", build_body(s),
                                               RequestRecord(id=i)) for i, s in enumerate(specs)))

    return asyncio.run(go())


@pytest.mark.parametrize("input_tokens,system", [(40, None), (128, None), (301, "Be brief.")])
def test_prompt_tokens_equal_input_tokens(tiny_server, input_tokens, system):
    w = workload(input_tokens=input_tokens, system_prompt=system)
    w.prepare(LlamaCppTokenizer(tiny_server.url))
    assert w.describe()["prompt_tokens_method"] == "tokenize"
    specs = [w.spec(i, repeat) for repeat in (0, 1) for i in range(3)]
    recs = _send_all(tiny_server.url, specs)
    assert all(r.ok for r in recs)
    assert [r.usage["prompt_tokens"] for r in recs] == [input_tokens] * len(specs)
    prompts = [s.messages[-1]["content"] for s in specs]
    assert len(set(prompts)) == len(prompts)  # distinct per request and per repeat
    assert len({p[:3] for p in prompts}) > 1  # and they differ from the start: no shared prefix
    assert w.prompt(0, 0) == prompts[0]  # deterministic


def test_impossible_length_is_reported(tiny_server):
    w = workload(input_tokens=3)  # the chat template alone is longer
    w.prepare(LlamaCppTokenizer(tiny_server.url))
    w.spec(0, 0)
    assert "could not be hit exactly" in w.describe()["prompt_tokens_note"]


def test_fallback_without_tokenize():
    with timedserver.running() as url:  # speaks chat, but has no /apply-template or /tokenize
        w = workload(input_tokens=64)
        w.prepare(LlamaCppTokenizer(url))
        d = w.describe()
        assert d["prompt_tokens_method"] == "estimate"
        assert "no server tokenizer" in d["prompt_tokens_note"]
        specs = [w.spec(i, 0) for i in range(3)]
        assert all(len(s.messages[0]["content"].split()) > 20 for s in specs)
        assert all(r.ok for r in _send_all(url, specs))
    offered_none = workload(input_tokens=64)
    offered_none.prepare(None)  # a backend with no tokenizer: an estimate, said so
    assert offered_none.describe()["prompt_tokens_method"] == "estimate"
    assert "offers no tokenizer" in offered_none.describe()["prompt_tokens_note"]


def test_every_prompt_is_fitted_before_the_measured_window(tiny_server, compose, tmp_path, monkeypatch):
    """Fitting is blocking HTTP: inside the window it would add to wall time and energy, and
    stall the event loop under load. Every repeat's prompts are fitted before warm-up."""
    from benchrun import job
    from benchrun.load.records import RecordWriter
    from benchrun.workloads.synthetic import SyntheticWorkload

    events = []
    real_fit = SyntheticWorkload._fit

    def fit(self, index, repeat):
        events.append(("fit", repeat))
        return real_fit(self, index, repeat)

    monkeypatch.setattr(SyntheticWorkload, "_fit", fit)
    cfg = compose(["workload.requests=2", "workload.output_tokens=2", "workload.input_tokens=32",
                   "repeats=2", "load.warmup_requests=1", "load.metrics_interval_s=0"])
    w = make_workload(cfg.workload, 1)
    w.prepare(LlamaCppTokenizer(tiny_server.url))
    writer = RecordWriter(tmp_path / "requests.jsonl")
    try:
        runs, _, _ = job._run_load(cfg, tiny_server.url, {}, w, writer,
                                   on_measure=lambda: events.append(("measure",)))
    finally:
        writer.close()
    assert events[-1] == ("measure",)  # nothing fitted once the window started
    assert sorted(e[1] for e in events[:-1]) == [-1, 0, 0, 1, 1]
    assert [r.ok for run in runs for r in run] == [True] * 4
