"""A sweep on a real SLURM cluster: scripts/slurm-cluster.sh runs slurmctld, slurmd and munge
on this machine as a one-node cluster, and benchrun's slurm_gpu launcher preset submits the
sweep through sbatch (Hydra's submitit launcher), as on a site cluster. CI starts the cluster
(.ci/run); without one, and without root to start it, the test skips and says how."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time

import pytest
from support import ROOT, output_dir_of, survivors

from benchrun.results import read_result

SCRIPT = ROOT / "scripts" / "slurm-cluster.sh"


@pytest.fixture(scope="module")
def slurm_env() -> dict:
    """The environment a client of the one-node cluster needs (SLURM_CONF, PATH); the cluster
    is started if it is not running, and then stopped again."""
    started = False
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True)
    if not status.stdout.startswith("running"):
        if os.geteuid() != 0:
            why = "no SLURM cluster running, and starting one needs root: sudo bash scripts/slurm-cluster.sh start"
            if os.environ.get("CI") == "true":
                pytest.fail(why)
            pytest.skip(why)
        t0 = time.monotonic()
        up = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr  # CI installed it: it must come up
        print(f"one-node SLURM cluster up in {time.monotonic() - t0:.1f} s")
        started = True
    lines = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in lines.splitlines():  # export NAME=VALUE
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = os.path.expandvars(value.strip("'\""))  # PATH=...:$PATH
    yield env
    if started:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


@pytest.mark.slow
def test_a_sweep_goes_through_sbatch_and_every_job_lands(cli, tmp_path, slurm_env):
    mark = f"{tmp_path}-slurm"
    t0 = time.monotonic()
    proc, _ = cli("-m", "hydra/launcher=slurm_gpu",
                  # this one node: no GPU, 2 cores, a few GB; the rest of the preset as shipped
                  "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
                  "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10",
                  "model=tiny,tiny_wide", "concurrency=1,2", "workload.requests=2", "load.warmup_requests=0",
                  env={**slurm_env, "BENCHRUN_TEST_MARK": mark}, timeout=900)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = tmp_path / output_dir_of(proc.stdout)
    res = {p.parent.name: read_result(p) for p in out.glob("*/result.json")}
    assert sorted(res) == ["0_tiny_c1", "1_tiny_c2", "2_tiny_wide_c1", "3_tiny_wide_c2"]
    assert all(r["status"] == "ok" and r["metrics"]["requests_ok"] == 2 for r in res.values())
    # Each job ran as a SLURM job on this node, and says which.
    clusters = [r["job"]["cluster"] for r in res.values()]
    assert all(c and c["scheduler"] == "slurm" and c["job_id"] for c in clusters)
    assert {c["node"] for c in clusters} == {platform.node().split(".")[0]}
    assert len({(c["job_id"], c["array_task_id"]) for c in clusters}) == 4
    # One summary and one report, written once by the submitting process after every job.
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["job"] for r in summary) == sorted(res)
    assert (out / "report.md").is_file() and "tiny_wide" in (out / "report.md").read_text()
    assert (out / ".submitit").is_dir()
    # No server outlives its job: every process that carried the mark has exited.
    assert survivors(mark) == []
    print(f"SLURM sweep of 4 jobs: {wall:.1f} s")
