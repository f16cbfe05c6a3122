"""The agentic workload: templates and history, concurrency -> agents, pipelines, tasks.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_agentic.py."""
from __future__ import annotations

import asyncio
import json

import pytest
from support import agentic_record as _rec
from support import agentic_workload as wl
from support import output_dir_of, spy

from benchrun.checks.sandbox import isolation
from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan
from benchrun.load.records import RequestRecord
from benchrun.results import validate_result
from benchrun.workloads.agentic import AgenticWorkload

EXACT = {"ignore_eos": True}  # every reply exactly max_tokens long, so timings overlap measurably


def drive(workload, url: str, concurrency: int) -> tuple[list[RequestRecord], list[RequestSpec]]:
    specs: list[RequestSpec] = []

    async def go():
        async with make_session(60) as s:
            eng = Engine(s, url + "/v1/chat/completions")
            convs = [spy(c, specs) for c in workload.conversations(0)]
            return await eng.run(convs, LoadPlan(concurrency=concurrency))

    recs, _ = asyncio.run(go())
    return recs, specs


def by_agent(recs):
    out = {}
    for r in recs:
        out.setdefault(r.tags["agent"], []).append(r)
    return out


def test_templates_and_history_on_a_real_server(tiny_server):
    w = AgenticWorkload(wl([
        {"name": "A", "system": "Be brief.", "max_tokens": 6, "extra": EXACT,
         "turns": ["Say hi.", "Repeat your first answer: {{ A.turn1 }}"]},
        {"name": "B", "needs": ["A"], "max_tokens": 6, "extra": EXACT,
         "turns": ["Review: {{ A.last }} | code: {{ A.code }} | set: {x: 1}"]},
    ]), concurrency=1)
    recs, specs = drive(w, tiny_server.url, 1)
    assert [r.ok for r in recs] == [True, True, True], [r.error for r in recs]
    a1, a2, b1 = recs
    assert [(r.tags["agent"], r.tags["turn"]) for r in recs] == [("A", 1), ("A", 2), ("B", 1)]
    # History accumulates: turn 2 carries the system prompt, turn 1 and the real first reply.
    assert specs[1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": a1.text},
        {"role": "user", "content": f"Repeat your first answer: {a1.text}"},
    ]
    assert len(a1.text) > 0 and a2.usage["prompt_tokens"] > a1.usage["prompt_tokens"] + len(a1.text)
    # B's prompt was filled from A's output; braces that are not references stay as written.
    assert specs[2].messages == [{"role": "user",
                                  "content": f"Review: {a2.text} | code: {a2.text} | set: {{x: 1}}"}]
    assert specs[0].body["seed"] != specs[1].body["seed"] and specs[0].max_tokens == 6


def test_concurrent_agents_start_together(tiny_server):
    agents = [{"name": n, "max_tokens": 24, "extra": EXACT, "turns": [f"{n} go"]} for n in ("P", "S1", "S2")]
    recs, _ = drive(AgenticWorkload(wl(agents), 3), tiny_server.url, 3)
    assert sorted(r.tags["agent"] for r in recs) == ["P", "S1", "S2"] and all(r.ok for r in recs)
    assert max(r.start_ns for r in recs) < min(r.end_ns for r in recs)  # all three in flight at once


PIPE = [
    {"name": "plan", "max_tokens": 8, "extra": EXACT, "turns": ["Plan a game."]},
    {"name": "dev", "needs": ["plan"], "max_tokens": 24, "extra": EXACT, "turns": ["Code it: {{ plan.last }}"]},
    {"name": "docs", "needs": ["plan"], "max_tokens": 24, "extra": EXACT, "turns": ["Document: {{ plan.last }}"]},
    {"name": "qa", "needs": ["dev", "docs"], "max_tokens": 4, "extra": EXACT,
     "turns": ["Review {{ dev.last }} and {{ docs.last }}"]},
]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_pipeline_ordering_and_parallelism(tiny_server, concurrency):
    w = AgenticWorkload(wl(PIPE), concurrency)
    recs, specs = drive(w, tiny_server.url, concurrency)
    a = {k: v[0] for k, v in by_agent(recs).items()}
    assert set(a) == {"plan", "dev", "docs", "qa"} and all(r.ok for r in recs)
    assert all(r.tags["role"] == "pipeline" for r in recs)
    assert a["dev"].start_ns >= a["plan"].end_ns and a["docs"].start_ns >= a["plan"].end_ns
    assert a["qa"].start_ns >= max(a["dev"].end_ns, a["docs"].end_ns)
    overlap = max(a["dev"].start_ns, a["docs"].start_ns) < min(a["dev"].end_ns, a["docs"].end_ns)
    assert overlap == (concurrency >= 2)  # independent agents run in parallel when slots allow
    qa_prompt = next(s for s in specs if s.tags["agent"] == "qa").messages[-1]["content"]
    assert qa_prompt == f"Review {a['dev'].text} and {a['docs'].text}"


def test_evaluate_builds_task_entries_that_follow_the_contract():
    w = AgenticWorkload(wl([
        {"name": "P", "title": "Code", "turns": [
            {"prompt": "a", "checks": ["python_parses"]},
            {"prompt": "b", "checks": [{"type": "defines", "names": ["f"]}]}]},
        {"name": "S1", "title": "Docstring", "turns": ["c"], "checks": ["has_docstrings"]},
        {"name": "S2", "title": "Chat", "turns": ["d"]},
    ]), 3)
    good = '```python\ndef f(x):\n    """Id.\n\n    Args:\n        x: v.\n\n    Returns:\n        x.\n    """\n    return x\n```'
    recs = [_rec(1, "P", 1, "x = 1"), _rec(2, "P", 2, "```python\ndef g(): pass\n```"),
            _rec(3, "S1", 1, good), _rec(4, "S2", 1, "", ok=False)]
    tasks = {t["agent"]: t for t in w.evaluate(recs)}
    p, s1, s2 = tasks["P"], tasks["S1"], tasks["S2"]
    assert p["turns"] == 2 and p["latency_ms"] == 4.0 + 6.0 and p["ttft_ms"] == 1.0 and p["output_tokens"] == 4
    assert [(c["name"], c["turn"], c["passed"]) for c in p["checks"]] == [("python_parses", 1, True), ("defines", 2, False)]
    assert p["passed"] is False and p["checks"][1]["reason"] == "missing f" and p["role"] == "primary"
    assert s1["passed"] is True and s1["title"] == "Docstring" and s1["role"] == "side"
    assert s2["passed"] is None and s2["checks"] == [] and s2["requests_failed"] == 1 and s2["ttft_ms"] is None
    assert {t["isolation"] for t in tasks.values()} == {isolation()}
    validate_result_tasks = {"tasks": list(tasks.values())}
    from benchrun.results import _validator
    errs = [e for e in _validator().iter_errors(validate_result_tasks) if list(e.path)[:1] == ["tasks"]]
    assert errs == []


@pytest.mark.slow
def test_cli_agentic_run_writes_tasks_with_failed_checks(cli):
    proc, cwd = cli("workload=agentic_coding", "concurrency=2", "workload.max_tokens_cap=8",
                    "model.kv_unified=true", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = next((cwd / output_dir_of(proc.stdout)).glob("0_*"))
    res = json.loads((job / "result.json").read_text())
    assert res["status"] == "ok", res["error"]
    validate_result(res)
    tasks = res["tasks"]
    assert [(t["agent"], t["turns"], t["role"]) for t in tasks] == [("primary", 3, "primary"), ("S1", 1, "side")]
    # Random weights write nonsense: the checks run and fail, and say why.
    assert all(t["passed"] is False for t in tasks)
    assert all(c["reason"] for t in tasks for c in t["checks"])
    assert {t["isolation"] for t in tasks} == {isolation()}
    assert all(t["output_tokens"] > 0 and t["latency_ms"] > 0 for t in tasks)


def test_pipeline_stopped_early_does_not_hang(tiny_server):
    """With a duration limit the first agent is cut off; its dependants must not wait forever."""
    # The limit is a quarter of what the first turn takes on this server, measured in the same
    # run: the limit passes while that turn streams, on a fast idle machine as on a busy one.
    agents = [{**PIPE[0], "turns": ["Plan.", "More."], "max_tokens": 200}] + PIPE[1:]
    w = AgenticWorkload(wl(agents), 2)
    first = AgenticWorkload(wl([{**agents[0], "turns": ["Plan."]}]), 1)

    async def go():
        async with make_session(60) as s:
            eng = Engine(s, tiny_server.url + "/v1/chat/completions")
            [turn1], _ = await eng.run(first.conversations(0), LoadPlan(concurrency=1))
            limit_s = (turn1.end_ns - turn1.start_ns) / 4e9
            return await asyncio.wait_for(eng.run(w.conversations(0), LoadPlan(concurrency=2, duration_s=limit_s)), 120)  # a hang is forever; 120 s only bounds a busy box

    recs, _ = asyncio.run(go())
    assert [r.tags["agent"] for r in recs] == ["plan"]
