"""Sweeps on a real SLURM cluster: scripts/slurm-cluster.sh runs slurmctld, slurmd and munge
on this machine as a one-node cluster, and benchrun's slurm_gpu launcher preset submits the
sweep through sbatch (hydra_plugins/benchrun_launcher, on Hydra's submitit launcher), as on a
site cluster: one cluster job per preset, faults (scancel, a killed job) as results, resume.
CI starts the cluster (.ci/run); without one, and without root to start it, the tests skip and
say how (under CI they fail)."""
from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import ROOT, output_dir_of, survivors, wait_for

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
            # .ci/run starts the cluster only as root: as a normal user this machine cannot run it.
            pytest.skip("unavailable here: no SLURM cluster running, and starting one needs root "
                        "(sudo bash scripts/slurm-cluster.sh start)")
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


# This one node: no GPU, 2 cores, a few GB; the rest of the slurm_gpu preset as shipped.
ON_THIS_NODE = ["-m", "hydra/launcher=slurm_gpu", "hydra.launcher.gpus_per_node=null",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10"]


@pytest.mark.slow
def test_a_sweep_goes_through_sbatch_one_cluster_job_per_preset(cli, tmp_path, slurm_env):
    mark = f"{tmp_path}-slurm"
    t0 = time.monotonic()
    proc, _ = cli(*ON_THIS_NODE, "model=tiny,tiny_wide", "concurrency=1,2", "workload.requests=2",
                  "load.warmup_requests=0", env={**slurm_env, "BENCHRUN_TEST_MARK": mark}, timeout=900)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = tmp_path / output_dir_of(proc.stdout)
    res = {p.parent.name: read_result(p) for p in out.glob("*/result.json")}
    assert sorted(res) == ["0_tiny_c1", "1_tiny_c2", "2_tiny_wide_c1", "3_tiny_wide_c2"]
    assert all(r["status"] == "ok" and r["metrics"]["requests_ok"] == 2 for r in res.values())
    # Each job ran as a SLURM job on this node, and says which: one cluster job per preset,
    # whose server (started once) served both of its concurrency levels.
    clusters = {name: r["job"]["cluster"] for name, r in res.items()}
    assert all(c and c["scheduler"] == "slurm" and c["job_id"] for c in clusters.values())
    assert {c["node"] for c in clusters.values()} == {platform.node().split(".")[0]}
    for first, second in (("0_tiny_c1", "1_tiny_c2"), ("2_tiny_wide_c1", "3_tiny_wide_c2")):
        assert clusters[first] == clusters[second]
        assert res[first]["server"]["reused"] is False and res[second]["server"]["reused"] is True
        assert res[first]["server"]["pid"] == res[second]["server"]["pid"]
    assert clusters["0_tiny_c1"]["job_id"] != clusters["2_tiny_wide_c1"]["job_id"]
    assert len(re.findall(r"^benchrun: cluster job \S+: ", proc.stdout, re.M)) == 2
    # One summary and one report, written once by the submitting process after every job.
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["job"] for r in summary) == sorted(res)
    assert (out / "report.md").is_file() and "tiny_wide" in (out / "report.md").read_text()
    assert (out / ".submitit").is_dir()
    # No server outlives its job: every process that carried the mark has exited.
    assert survivors(mark) == []
    print(f"SLURM sweep of 4 jobs: {wall:.1f} s")


def _worker(array_job: str, task: int) -> psutil.Process:
    """The process slurmstepd runs for a cluster job's step: benchrun's worker (submitit's
    entry point; the batch script, also slurmstepd's child, only waits on srun)."""
    for p in psutil.process_iter(["pid"]):
        try:
            env = p.environ()
            if (env.get("SLURM_ARRAY_JOB_ID") == array_job and env.get("SLURM_ARRAY_TASK_ID") == str(task)
                    and "submitit.core._submit" in p.cmdline() and p.parent().name() == "slurmstepd"):
                return p
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    raise AssertionError(f"no worker process for cluster job {array_job}_{task}")


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.is_file() else 0


@pytest.mark.slow
def test_cancelled_and_killed_cluster_jobs_are_results_and_resume_submits_only_those(tmp_path, slurm_env):
    """Three presets (three cluster jobs, two run at once on this 2-core node), two levels each.
    While the first two measure their first level, one is cancelled (scancel) and the other's
    process is killed (a node failure, as SLURM sees it); the third still runs, and resume=DIR
    then submits only what is missing."""
    mark = f"{tmp_path}-slurm-faults"
    env = {**os.environ, **slurm_env, "BENCHRUN_TEST_MARK": mark}
    args = [sys.executable, "-m", "benchrun", *ON_THIS_NODE, "model=tiny", "model.parallel=1,2,3",
            "concurrency=1,2", "workload.requests=400", "load.duration_s=6", "load.warmup_requests=0"]
    log = tmp_path / "sweep.log"
    with open(log, "w") as fh:
        sweep = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    try:
        jobs = wait_for(lambda: re.findall(r"^benchrun: cluster job (\d+)_(\d): (.*)$", log.read_text(), re.M)
                         if log.read_text().count("benchrun: cluster job") == 3 else None, 300, "3 cluster jobs")
        out = tmp_path / "outputs" / os.listdir(tmp_path / "outputs")[0]
        assert [names for _, _, names in jobs] == ["0_tiny_c1, 1_tiny_c2", "2_tiny_c1, 3_tiny_c2",
                                                   "4_tiny_c1, 5_tiny_c2"]
        array = jobs[0][0]
        # Each is hit as soon as its first level measures (a few requests logged of its 6 s),
        # whichever starts first: the two cluster jobs start their servers at the same time.
        hit = {"0_tiny_c1": lambda: subprocess.run(["scancel", f"{array}_0"], env=env, check=True),
               "2_tiny_c1": lambda: _worker(array, 1).send_signal(signal.SIGKILL)}

        def hit_those_measuring():
            for level in [k for k in hit if _lines(out / k / "requests.jsonl") >= 3]:
                hit.pop(level)()
            return not hit

        wait_for(hit_those_measuring, 300, "both first levels to measure")
        sweep.wait(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    text = log.read_text()
    assert sweep.returncode == 0, text[-3000:]
    res = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}
    assert sorted(res) == [f"{i}_tiny_c{1 + i % 2}" for i in range(6)], text[-3000:]
    status = {k: (r["status"], r["error"]) for k, r in res.items()}
    # Cancelled: the level running stopped on SIGTERM and kept what it measured; the next never began.
    assert status["0_tiny_c1"][0] == "interrupted" and "SIGTERM" in status["0_tiny_c1"][1]
    assert res["0_tiny_c1"]["metrics"]["requests_ok"] >= 3
    assert status["1_tiny_c2"][0] == "interrupted" and "before this job began" in status["1_tiny_c2"][1]
    # Killed: failed, written by the submitting process, with the requests its log holds.
    assert status["2_tiny_c1"][0] == "failed" and "ended FAILED" in status["2_tiny_c1"][1], status
    assert res["2_tiny_c1"]["metrics"]["requests_ok"] >= 3
    assert res["2_tiny_c1"]["job"]["cluster"]["state"] == "FAILED"
    assert status["3_tiny_c2"][0] == "failed" and "before this job began" in status["3_tiny_c2"][1]
    # The rest of the sweep finished, and the summary has every job.
    assert status["4_tiny_c1"][0] == status["5_tiny_c2"][0] == "ok"
    assert len(json.loads((out / "summary.json").read_text())) == 6
    # No server outlived its cluster job, cancelled or killed (SLURM's own clean-up of a
    # cancelled job may take its KillWait: an orphan would stay for good).
    wait_for(lambda: survivors(mark) == [], 60, "every process of the cancelled and killed jobs to end")

    before = {k: (out / k / "result.json").read_bytes() for k in ("4_tiny_c1", "5_tiny_c2")}
    again = subprocess.run([*args, f"resume={out}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    submitted = re.findall(r"^benchrun: cluster job \S+: (.*)$", again.stdout, re.M)
    assert submitted == ["0_tiny_c1, 1_tiny_c2", "2_tiny_c1, 3_tiny_c2"]
    assert again.stdout.count("not submitted") == 2
    assert all((out / k / "result.json").read_bytes() == b for k, b in before.items())
    assert all(json.loads((out / f"{i}_tiny_c{1 + i % 2}" / "result.json").read_text())["status"] == "ok"
               for i in range(6))
    # The earlier attempts are kept beside, and so is the first submission's submitit folder.
    assert (out / "0_tiny_c1" / "result.previous-1.json").is_file()
    assert (out / ".submitit.previous-1").is_dir()
    wait_for(lambda: survivors(mark) == [], 60, "every process of the resumed sweep to end")
