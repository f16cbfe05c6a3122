"""The agentic workload: templates and history, concurrency -> agents, pipelines, tasks."""
from __future__ import annotations

import asyncio
import json

import pytest

from benchrun.checks.sandbox import isolation
from benchrun.client import RequestSpec, make_session
from benchrun.config import WorkloadConfig
from benchrun.engine import Engine, LoadPlan
from benchrun.records import RequestRecord
from benchrun.results import validate_result
from benchrun.workloads import make_workload
from benchrun.workloads.agentic import AgenticWorkload, render

from conftest import output_dir_of

EXACT = {"ignore_eos": True}  # every reply exactly max_tokens long, so timings overlap measurably


def wl(agents, **kw):
    return WorkloadConfig(name="t", kind="agentic", agents=agents, **kw)


def spy(conv, log: list):
    """Pass a conversation through to the engine, keeping every RequestSpec it yields."""
    try:
        item = next(conv)
    except StopIteration:
        return
    while True:
        if isinstance(item, RequestSpec):
            log.append(item)
        got = yield item
        try:
            item = conv.send(got)
        except StopIteration:
            return


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


def test_render_data_files_and_code_blocks():
    out = {"dev": ["first", "Sure:\n```python\nx = 1\n```\nDone."]}
    assert render("{{dev.code}}|{{ dev.turn1 }}|{{ dev.turn3 }}", out) == "x = 1|first|"
    assert "def calculate_discount" in render("{{ data:calculate_discount.py }}", {})


def test_concurrency_maps_to_agents(compose):
    cfg = compose(["workload=agentic_coding"])
    labels = {c: [i.label for i in make_workload(cfg.workload, c).instances()] for c in range(1, 6)}
    assert labels == {1: ["primary"], 2: ["primary", "S1"], 3: ["primary", "S1", "S2"],
                      4: ["primary", "S1", "S2", "S1#2"], 5: ["primary", "S1", "S2", "S1#2", "S2#2"]}
    roles = [i.agent.role for i in make_workload(cfg.workload, 3).instances()]
    assert roles == ["primary", "side", "side"]
    tetris = compose(["workload=tetris_agents"])
    for c in (1, 4):  # a pipeline always runs every agent; concurrency only caps the parallelism
        assert [i.label for i in make_workload(tetris.workload, c).instances()] == \
               ["planner", "developer", "docs", "qa"]


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


@pytest.mark.parametrize("agents, msg", [
    ([{"name": "a", "turns": ["x"]}, {"name": "b", "needs": ["zz"], "turns": ["y"]}], "needs unknown agent 'zz'"),
    ([{"name": "b", "needs": ["a"], "turns": ["y"]}, {"name": "a", "turns": ["x"]}], "must be listed before it"),
    ([{"name": "a", "turns": ["x"]}, {"name": "b", "turns": ["{{ a.last }}"]}], "does not list a in `needs`"),
    ([{"name": "a", "turns": ["{{ data:nope.py }}"]}], "no data file 'nope.py'"),
    ([{"name": "a", "turns": [{"prompt": "x", "max_token": 3}]}], "unknown key\\(s\\) max_token"),
    ([{"name": "a", "turns": ["x"], "checks": ["compiles"]}], "unknown check 'compiles'"),
    ([{"name": "a", "turns": []}], "non-empty `turns`"),
    ([], "non-empty `agents`"),
])
def test_bad_agent_definitions_are_one_line_errors(agents, msg):
    with pytest.raises(ValueError, match=msg):
        AgenticWorkload(wl(agents), 1)


def _rec(id_, agent, turn, text, ok=True):
    r = RequestRecord(id=id_, tags={"agent": agent, "turn": turn}, start_ns=0, end_ns=2_000_000 * (turn + 1),
                      event_ns=[1_000_000, 1_500_000], event_kinds="cc", status=200 if ok else 500,
                      done=ok, text=text, usage={"completion_tokens": 2, "prompt_tokens": 9})
    r.error = None if ok else "HTTP 500: boom"
    return r


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


def test_demo_and_study_experiments_compose(compose):
    demo = compose(["experiment=demo"], return_hydra_config=True)
    assert demo.workload.name == "agentic_coding" and demo.workload.max_tokens_cap
    assert dict(demo.hydra.sweeper.params) == {"model": "smollm2,gemma3_270m", "concurrency": "1,2,3"}
    # No demo request can outgrow its slot: the primary agent's last turn, counted at one token
    # per UTF-8 byte (a BPE token is at least one byte, so this bounds the real count from above)
    # plus 8 template tokens per message, with every reply at the cap, fits ctx_size / parallel.
    cap = demo.workload.max_tokens_cap
    primary = demo.workload.agents[0]
    texts = [demo.workload.system_prompt] + [t.prompt for t in primary.turns]
    worst = sum(len(t.encode()) + 8 for t in texts) + len(primary.turns) * (cap + 8)
    for name in ("smollm2", "gemma3_270m"):
        m = compose(["experiment=demo", f"model={name}"]).model
        assert not m.kv_unified and worst <= m.ctx_size // m.parallel, (name, worst, m.ctx_size // m.parallel)
    study = compose(["experiment=qwen3_vs_qwen35"], return_hydra_config=True)
    assert dict(study.hydra.sweeper.params) == {"model": "qwen3coder,qwen35", "concurrency": "1,2,3"}
    assert study.repeats == 3 and study.hardware.name == "rtx4090" and study.workload.name == "agentic_coding"
    turns = [t for a in study.workload.agents for t in a.turns]
    assert study.workload.max_tokens_cap is None and len(turns) == 5


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
    # 200 tokens take far longer than the 0.05 s limit, even on a fast idle machine.
    agents = [{**PIPE[0], "turns": ["Plan.", "More."], "max_tokens": 200}] + PIPE[1:]
    w = AgenticWorkload(wl(agents), 2)

    async def go():
        async with make_session(60) as s:
            eng = Engine(s, tiny_server.url + "/v1/chat/completions")
            return await asyncio.wait_for(eng.run(w.conversations(0), LoadPlan(concurrency=2, duration_s=0.05)), 120)  # a hang is forever; 120 s only bounds a busy box

    recs, _ = asyncio.run(go())
    assert [r.tags["agent"] for r in recs] == ["plan"]


def test_a_repeated_copy_reads_its_own_replies_not_the_originals():
    w = AgenticWorkload(wl([{"name": "P", "turns": ["go"]},
                            {"name": "S1", "turns": ["first", "again: {{ S1.last }}"]}]), 3)
    convs = dict(zip([i.label for i in w.instances()], w.conversations(0)))
    assert list(convs) == ["P", "S1", "S1#2"]
    s1, s2 = convs["S1"], convs["S1#2"]
    next(s1), next(s2)
    second_s1 = s1.send(RequestRecord(id=0, text="from S1"))
    second_s2 = s2.send(RequestRecord(id=1, text="from S1#2"))
    assert second_s1.messages[-1]["content"] == "again: from S1"
    assert second_s2.messages[-1]["content"] == "again: from S1#2"


def test_without_a_containing_sandbox_code_checks_are_not_run(monkeypatch):
    from benchrun.checks import sandbox

    monkeypatch.setattr(sandbox, "unavailable", lambda m: None if m == "unconfined" else f"{m}: absent here")
    w = AgenticWorkload(wl([
        {"name": "P", "title": "Tests", "turns": [{"prompt": "a", "checks": [
            "python_parses", {"type": "pytest_passes", "reference": "calculate_discount.py"}]}]},
        {"name": "S1", "title": "Code", "turns": [{"prompt": "b", "checks": ["python_parses", "runs"]}]},
    ]), 2)
    code = "```python\nimport os\nos.system('touch /tmp/pwned')\ndef test_x():\n    pass\n```"
    tasks = {t["agent"]: t for t in w.evaluate([_rec(1, "P", 1, code), _rec(2, "S1", 1, "```python\nx = (\n```")])}
    p, s1 = tasks["P"], tasks["S1"]
    assert p["isolation"] is None and s1["isolation"] is None
    assert [c["passed"] for c in p["checks"]] == [True, None]
    assert p["checks"][1]["reason"].startswith("not run: no sandbox that contains generated code works here")
    assert "isolation=unconfined" in p["checks"][1]["reason"]
    assert p["passed"] is None  # undecided, not a pass
    assert s1["passed"] is False  # a check that ran and failed still decides
    with pytest.raises(ValueError, match="workload.sandbox.isolation: sandbox isolation 'bwrap' is not available"):
        AgenticWorkload(wl([{"name": "P", "turns": ["a"]}], sandbox={"isolation": "bwrap"}), 1)
