"""End to end: a real 2-preset x 2-concurrency sweep on the embedded llama.cpp server.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_sweep.py."""
import csv
import json

import psutil
import pytest
import yaml
from support import output_dir_of, run_cli

from benchrun.load.records import read_records
from benchrun.results import validate_result

OUT_TOKENS = 12


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    proc = run_cli(["-m", "model=tiny,tiny_wide", "concurrency=1,2", "workload=synthetic",
                    "workload.requests=4", f"workload.output_tokens={OUT_TOKENS}",
                    "workload.input_tokens=32", "report=false"], cwd, check=True)
    return cwd / output_dir_of(proc.stdout), proc


pytestmark = pytest.mark.slow


def test_job_dirs_named_by_number_model_concurrency(sweep):
    out, _ = sweep
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["0_tiny_c1", "1_tiny_c2", "2_tiny_wide_c1", "3_tiny_wide_c2"]
    assert out.parent.name == "outputs"


def test_each_job_dir_has_config_log_records_and_valid_result(sweep):
    out, _ = sweep
    for job in sorted(p for p in out.iterdir() if p.is_dir()):
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        assert cfg["model"]["name"] in job.name
        assert (job / "server.log").stat().st_size > 0
        assert not (job / "cli.log").exists()  # no empty Hydra log beside what benchrun writes
        res = json.loads((job / "result.json").read_text())
        validate_result(res)
        assert res["status"] == "ok", res["error"]
        assert res["concurrency"] == int(job.name.rsplit("_c", 1)[1])
        assert res["metrics"]["requests_ok"] == 4 and res["metrics"]["requests_failed"] == 0
        assert res["metrics"]["output_tokens"] == 4 * OUT_TOKENS
        assert len(res["model"]["sha256"]) == 64


def test_exact_token_counts_from_the_server(sweep):
    out, _ = sweep
    for job in (p for p in out.iterdir() if p.is_dir()):
        recs = [r for r in read_records(job / "requests.jsonl") if not r.warmup]
        assert len(recs) == 4
        for r in recs:
            assert r.usage["completion_tokens"] == OUT_TOKENS
            assert r.timings["predicted_n"] == OUT_TOKENS
            assert r.finish_reason == "length"
            assert r.event_kinds[0] == "r"  # the role-only first chunk, never a token
            assert r.event_kinds.count("c") == OUT_TOKENS  # one SSE event per token
            assert r.done and r.start_ns < r.end_ns


def test_one_server_per_preset_and_all_stopped(sweep):
    out, _ = sweep
    pids = {}
    for job in (p for p in out.iterdir() if p.is_dir()):
        res = json.loads((job / "result.json").read_text())
        pids.setdefault(res["model"]["name"], set()).add(res["server"]["pid"])
        assert res["server"]["reused"] == job.name.endswith("_c2")
    assert all(len(v) == 1 for v in pids.values())
    assert pids["tiny"] != pids["tiny_wide"]
    for (pid,) in pids.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_summary_csv_has_a_row_per_job(sweep):
    out, proc = sweep
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["job"] for r in rows] == ["0_tiny_c1", "1_tiny_c2", "2_tiny_wide_c1", "3_tiny_wide_c2"]
    assert all(r["status"] == "ok" for r in rows)
    assert f"benchrun: results in outputs/{out.name}" in proc.stdout


def test_tiny_wide_is_measurably_slower(sweep):
    out, _ = sweep
    res = {p.name: json.loads((p / "result.json").read_text()) for p in out.iterdir() if p.is_dir()}
    fast = res["0_tiny_c1"]["server_timings"]["predicted_per_second"]["mean"]
    slow = res["2_tiny_wide_c1"]["server_timings"]["predicted_per_second"]["mean"]
    assert slow < fast / 2


def test_external_mode_launches_nothing(tiny_server, cli):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc, cwd = cli("model=external", f"model.url={tiny_server.url}", "workload.requests=3",
                    "workload.output_tokens=8", "report=false")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(next((cwd / output_dir_of(proc.stdout)).glob("*/result.json")).read_text())
    assert res["status"] == "ok", res["error"]
    assert res["server"]["backend"] == "external" and res["server"]["pid"] is None
    assert res["server"]["url"] == tiny_server.url
    assert res["metrics"]["requests_ok"] == 3
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
