"""resume=DIR: jobs whose result.json is ok are kept, the rest rerun into the same dir.
This half needs no server, process or socket; the rest is in tests/integration/test_resume.py."""
from __future__ import annotations

import json

from benchrun.results import read_result
from benchrun.resume import job_overrides, kept_on_resume


def _attempt(job_dir, status, tag, overrides=("model=tiny",)):
    (job_dir / "result.json").write_text(json.dumps({"status": status, "job": {"overrides": list(overrides)}}))
    (job_dir / "requests.jsonl").write_text(tag)


def test_every_earlier_attempt_is_kept_numbered(tmp_path):
    _attempt(tmp_path, "interrupted", "first")
    assert not kept_on_resume(tmp_path, ["model=tiny", "resume=x"], {})
    _attempt(tmp_path, "failed", "second")
    assert not kept_on_resume(tmp_path, ["model=tiny", "resume=x"], {})
    assert read_result(tmp_path / "result.previous-1.json")["status"] == "interrupted"
    assert read_result(tmp_path / "result.previous-2.json")["status"] == "failed"
    assert (tmp_path / "requests.previous-1.jsonl").read_text() == "first"
    assert (tmp_path / "requests.previous-2.jsonl").read_text() == "second"
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "requests.jsonl").exists()
    # A job killed before it wrote result.json (SLURM time limit): its records are set aside
    # too, not appended to by the rerun.
    (tmp_path / "requests.jsonl").write_text("third")
    assert not kept_on_resume(tmp_path, ["model=tiny"], {})
    assert (tmp_path / "requests.previous-3.jsonl").read_text() == "third"


def test_an_older_ok_job_without_settings_is_kept_only_with_the_same_overrides(tmp_path):
    _attempt(tmp_path, "ok", "ok", ["model=tiny", "concurrency=2", "resume=old", "report=false"])
    assert kept_on_resume(tmp_path, ["concurrency=2", "model=tiny", "resume=new", "debug=true"], {})
    assert (tmp_path / "requests.jsonl").read_text() == "ok"
    assert not kept_on_resume(tmp_path, ["model=tiny", "concurrency=3", "resume=new"], {})
    assert (tmp_path / "requests.previous-1.jsonl").read_text() == "ok"


def test_an_ok_job_is_kept_only_with_the_same_settings_however_they_were_spelled(tmp_path):
    ran = {"model": "tiny", "concurrency": 2, "model.parallel": 2}
    (tmp_path / "result.json").write_text(json.dumps(
        {"status": "ok", "job": {"overrides": ["model=tiny", "concurrency=2", "model.parallel=2"], "settings": ran}}))
    assert kept_on_resume(tmp_path, ["concurrency=2", "+model.parallel=2", "model=tiny"], dict(ran))
    assert not kept_on_resume(tmp_path, ["model=tiny", "concurrency=2", "model.parallel=2"],
                              {**ran, "model.parallel": 4})
    assert (tmp_path / "result.previous-1.json").is_file()  # the mismatch was set aside


def test_job_overrides_drop_invocation_only_keys():
    assert job_overrides(["model=tiny", "resume=outputs/x", "report=false", "+debug=true", "concurrency=2"]) \
        == ["model=tiny", "concurrency=2"]
