"""The agentic workload on a context too small for it: refused before launch with both numbers
and the fix; run anyway (context_check=false), its failures are grouped by the server's own
cause; turns cut at max_tokens are marked, and checks failing on them say so.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_agentic_context.py."""
from __future__ import annotations

import json

import pytest

from benchrun.load.records import RequestRecord
from benchrun.measure import metrics as M
from benchrun.results import validate_result


def test_cli_refuses_a_workload_that_outgrows_its_slot(cli):
    proc, cwd = cli("workload=agentic_coding", "model.ctx_size=4096")  # tiny: 4 slots
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "gives each slot 1024 (ctx_size 4096 / parallel 4)" in line
    assert "needs about" in line and "estimated" in line and "model.ctx_size=" in line
    assert "context_check=false" in line and not (cwd / "outputs").exists()


@pytest.mark.slow
def test_failures_are_grouped_by_the_servers_cause(compose, tmp_path):
    from benchrun.job import run_job
    from benchrun.report import write_report
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        cfg = compose(["model=tiny", "model.ctx_size=1024", "model.parallel=4", "workload=agentic_coding",
                       "workload.max_tokens_cap=8", "concurrency=1", "context_check=false",
                       "load.warmup_requests=0", "telemetry.enabled=false", "report=false"])
        res = run_job(cfg, tmp_path / "0_tiny_c1", pool, job_num=0, run_id="t")
    finally:
        pool.close()
    assert res["status"] == "ok", res["error"]
    validate_result(res)
    assert res["workload"]["context"]["fits"] is False and res["workload"]["context"]["per_slot_tokens"] == 256
    m = res["metrics"]
    assert m["requests_failed"] == 3
    [f] = m["failures"]
    assert f["cause"] == "HTTP 400 exceed_context_size_error" and f["count"] == 3 and f["status"] == 400
    assert f["n_ctx"] == 256 and f["n_prompt_tokens"] > 256  # the server's own numbers, kept
    assert "model.ctx_size" in f["fix"] and "kv_unified" in f["fix"]
    write_report(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "3 x HTTP 400 exceed_context_size_error" in report and "slot context 256" in report


@pytest.mark.slow
def test_turns_cut_at_max_tokens_are_marked_and_checks_say_so(compose, tmp_path):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        cfg = compose(["model=tiny", "model.kv_unified=true", "workload=agentic_coding",
                       "workload.max_tokens_cap=8", "concurrency=1", "load.warmup_requests=0",
                       "telemetry.enabled=false", "report=false"])
        res = run_job(cfg, tmp_path / "0_tiny_c1", pool, job_num=0, run_id="t")
    finally:
        pool.close()
    assert res["status"] == "ok", res["error"]
    validate_result(res)
    recs = [RequestRecord.from_dict(json.loads(l)) for l in (tmp_path / "0_tiny_c1" / "requests.jsonl").read_text().splitlines()]
    cut = sorted(r.tags["turn"] for r in recs if M.cut_at_max_tokens(r))
    assert cut, "random weights at 8 tokens should run into max_tokens"
    assert res["metrics"]["requests_cut_at_max_tokens"] == len(cut)
    [task] = res["tasks"]
    assert task["truncated_turns"] == cut
    for c in task["checks"]:
        marked = "was cut at max_tokens=8" in c["reason"]
        assert marked == (c["passed"] is False and c["turn"] in cut), c
