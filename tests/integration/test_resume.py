"""resume=DIR: jobs whose result.json is ok are kept, the rest rerun into the same dir.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_resume.py."""
from __future__ import annotations

import json

import pytest
from support import output_dir_of

from benchrun.results import read_result


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

    # report=false: how benchrun is invoked, not what a job is -- the ok job is still kept.
    proc2, _ = cli(*args, f"resume={sweep}", "report=false", check=True)
    assert output_dir_of(proc2.stdout) == sweep  # the same sweep dir, not a new one
    assert "[0_tiny_c1] ok: kept from the earlier run (resume)" in proc2.stdout
    assert "[1_tiny_c2] ok:" in proc2.stdout
    assert (ok_job / "result.json").read_bytes() == kept_bytes  # not rerun
    assert (ok_job / "requests.jsonl").read_bytes() == kept_requests
    rerun = read_result(bad_job / "result.json")
    assert rerun["status"] == "ok" and rerun["run_id"] == res["run_id"] == sweep.name
    assert read_result(bad_job / "result.previous-1.json")["status"] == "interrupted"  # kept aside
    assert (bad_job / "requests.previous-1.jsonl").is_file() and (bad_job / "server.previous-1.log").is_file()
    # One preset, one set of overrides: the rerun job records no resume= / report=.
    for job, res_ in ((ok_job, read_result(ok_job / "result.json")), (bad_job, rerun)):
        assert res_["job"]["overrides"] == ["model=tiny", f"concurrency={job.name[-1]}",
                                            "workload.requests=2", "load.warmup_requests=0"]
        # ...and their values, typed as the job ran them: what resume and the report compare.
        assert res_["job"]["settings"] == {"model": "tiny", "concurrency": int(job.name[-1]),
                                           "workload.requests": 2, "load.warmup_requests": 0}
    assert sorted(p.parent.name for p in sweep.glob("*/result.json")) == ["0_tiny_c1", "1_tiny_c2"]
    summary = json.loads((sweep / "summary.json").read_text())
    assert [(r["job"], r["status"]) for r in summary] == [("0_tiny_c1", "ok"), ("1_tiny_c2", "ok")]
    assert len(list(tmp_path.joinpath("outputs").iterdir())) == 1
