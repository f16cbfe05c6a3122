"""resume=DIR: jobs whose result.json is ok are kept, the rest rerun into the same dir."""
from __future__ import annotations

import json

import pytest

from benchrun.results import read_result
from benchrun.resume import job_overrides, kept_on_resume
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
    assert sorted(p.parent.name for p in sweep.glob("*/result.json")) == ["0_tiny_c1", "1_tiny_c2"]
    summary = json.loads((sweep / "summary.json").read_text())
    assert [(r["job"], r["status"]) for r in summary] == [("0_tiny_c1", "ok"), ("1_tiny_c2", "ok")]
    assert len(list(tmp_path.joinpath("outputs").iterdir())) == 1


def _attempt(job_dir, status, tag, overrides=("model=tiny",)):
    (job_dir / "result.json").write_text(json.dumps({"status": status, "job": {"overrides": list(overrides)}}))
    (job_dir / "requests.jsonl").write_text(tag)


def test_every_earlier_attempt_is_kept_numbered(tmp_path):
    _attempt(tmp_path, "interrupted", "first")
    assert not kept_on_resume(tmp_path, ["model=tiny", "resume=x"])
    _attempt(tmp_path, "failed", "second")
    assert not kept_on_resume(tmp_path, ["model=tiny", "resume=x"])
    assert read_result(tmp_path / "result.previous-1.json")["status"] == "interrupted"
    assert read_result(tmp_path / "result.previous-2.json")["status"] == "failed"
    assert (tmp_path / "requests.previous-1.jsonl").read_text() == "first"
    assert (tmp_path / "requests.previous-2.jsonl").read_text() == "second"
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "requests.jsonl").exists()
    # A job killed before it wrote result.json (SLURM time limit): its records are set aside
    # too, not appended to by the rerun.
    (tmp_path / "requests.jsonl").write_text("third")
    assert not kept_on_resume(tmp_path, ["model=tiny"])
    assert (tmp_path / "requests.previous-3.jsonl").read_text() == "third"


def test_an_ok_job_is_kept_only_with_the_same_overrides(tmp_path):
    _attempt(tmp_path, "ok", "ok", ["model=tiny", "concurrency=2", "resume=old", "report=false"])
    assert kept_on_resume(tmp_path, ["concurrency=2", "model=tiny", "resume=new", "debug=true"])
    assert (tmp_path / "requests.jsonl").read_text() == "ok"
    assert not kept_on_resume(tmp_path, ["model=tiny", "concurrency=3", "resume=new"])
    assert (tmp_path / "requests.previous-1.jsonl").read_text() == "ok"


def test_job_overrides_drop_invocation_only_keys():
    assert job_overrides(["model=tiny", "resume=outputs/x", "report=false", "+debug=true", "concurrency=2"]) \
        == ["model=tiny", "concurrency=2"]
