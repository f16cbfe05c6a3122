"""resume=DIR: jobs whose result.json is ok are kept, the rest rerun into the same dir."""
from __future__ import annotations

import json

import pytest

from benchrun.results import read_result
from conftest import output_dir_of


@pytest.mark.slow
def test_resume_skips_ok_jobs_and_reruns_the_rest_in_the_same_dir(cli, tmp_path):
    args = ["-m", "model=tiny", "concurrency=1,2", "workload.requests=2", "load.warmup_requests=0"]
    proc, _ = cli(*args, check=True)
    sweep = tmp_path / output_dir_of(proc.stdout)
    ok_job, bad_job = sweep / "0_tiny_c1", sweep / "1_tiny_c2"
    # Job 1 as an interrupted run leaves it.
    res = read_result(bad_job / "result.json")
    res["status"], res["error"] = "interrupted", "interrupted by the user"
    (bad_job / "result.json").write_text(json.dumps(res))
    kept_bytes = (ok_job / "result.json").read_bytes()
    kept_requests = (ok_job / "requests.jsonl").read_bytes()

    proc2, _ = cli(*args, f"resume={sweep}", check=True)
    assert output_dir_of(proc2.stdout) == sweep  # the same sweep dir, not a new one
    assert "[0_tiny_c1] ok: kept from the earlier run (resume)" in proc2.stdout
    assert "[1_tiny_c2] ok:" in proc2.stdout
    assert (ok_job / "result.json").read_bytes() == kept_bytes  # not rerun
    assert (ok_job / "requests.jsonl").read_bytes() == kept_requests
    rerun = read_result(bad_job / "result.json")
    assert rerun["status"] == "ok" and rerun["run_id"] == res["run_id"] == sweep.name
    assert read_result(bad_job / "result.previous.json")["status"] == "interrupted"  # kept aside
    assert sorted(p.parent.name for p in sweep.glob("*/result.json")) == ["0_tiny_c1", "1_tiny_c2"]
    summary = json.loads((sweep / "summary.json").read_text())
    assert [(r["job"], r["status"]) for r in summary] == [("0_tiny_c1", "ok"), ("1_tiny_c2", "ok")]
    assert len(list(tmp_path.joinpath("outputs").iterdir())) == 1
