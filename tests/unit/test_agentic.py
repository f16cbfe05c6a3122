"""The agentic workload: templates and history, concurrency -> agents, pipelines, tasks.
This half needs no server, process or socket; the rest is in tests/integration/test_agentic.py."""
from __future__ import annotations

import pytest
from support import agentic_record as _rec
from support import agentic_workload as wl

from benchrun.config import SandboxConfig
from benchrun.load.records import RequestRecord
from benchrun.workloads import make_workload
from benchrun.workloads.agentic import AgenticWorkload
from benchrun.workloads.agents import render


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


def test_demo_and_study_experiments_compose(compose):
    demo = compose(["experiment=demo"], return_hydra_config=True)
    assert demo.workload.name == "agentic_small" and demo.workload.max_tokens_cap
    assert demo.workload.temperature == 0  # greedy: a rerun writes the same code
    assert dict(demo.hydra.sweeper.params) == {"model": "smollm2,smollm2_1slot", "concurrency": "1,2,3"}
    # No demo request can outgrow its slot: every agent's last turn (the pasted data files
    # included), counted at one token per UTF-8 byte (a BPE token is at least one byte, so this
    # bounds the real count from above) plus 8 template tokens per message, with every reply at
    # the cap, fits ctx_size / parallel.
    cap = demo.workload.max_tokens_cap
    worst = 0
    for agent in demo.workload.agents:
        texts = [demo.workload.system_prompt] + [render(t.prompt, {}) for t in agent.turns]
        worst = max(worst, sum(len(t.encode()) + 8 for t in texts) + len(agent.turns) * (cap + 8))
    for name in ("smollm2", "smollm2_1slot"):
        m = compose(["experiment=demo", f"model={name}"]).model
        assert not m.kv_unified and worst <= m.ctx_size // m.parallel, (name, worst, m.ctx_size // m.parallel)
    study = compose(["experiment=qwen3_vs_qwen35"], return_hydra_config=True)
    assert dict(study.hydra.sweeper.params) == {"model": "qwen3coder,qwen35", "concurrency": "1,2,3"}
    assert study.repeats == 3 and study.hardware.name == "rtx4090" and study.workload.name == "agentic_coding"
    turns = [t for a in study.workload.agents for t in a.turns]
    assert study.workload.max_tokens_cap is None and len(turns) == 5


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
        AgenticWorkload(wl([{"name": "P", "turns": ["a"]}], sandbox=SandboxConfig(isolation="bwrap")), 1)
