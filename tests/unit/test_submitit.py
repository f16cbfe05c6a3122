"""The SLURM GPU launcher preset composes with the settings a cluster needs, and benchrun's
cluster rules (benchrun/cluster.py): which sweep jobs share a cluster job, and what a job its
cluster job did not finish is recorded as. This half needs no server, process or socket; the
rest is in tests/integration/test_submitit.py and test_slurm.py."""
from __future__ import annotations

from pathlib import Path

from benchrun.cluster import SweepJob, by_server, lost


def test_slurm_gpu_launcher_preset_composes_with_the_settings_a_cluster_needs(compose):
    cfg = compose(["hydra/launcher=slurm_gpu", "hydra.launcher.partition=gpu",
                   "hydra.launcher.timeout_min=30"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("benchrun_launcher.slurm_launcher.BenchrunSlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 30)
    assert launcher.one_server_per_preset is True
    assert launcher.submitit_folder.startswith(cfg.hydra.sweep.dir)  # logs beside the results


def test_a_cluster_job_per_preset_holds_its_levels_in_sweep_order(compose):
    grid = [("tiny", 1), ("tiny_wide", 1), ("tiny", 2), ("tiny_wide", 2), ("tiny", 3)]
    jobs = [SweepJob(n, Path(f"{n}"), [], {}, compose([f"model={m}", f"concurrency={c}"]), [])
            for n, (m, c) in enumerate(grid)]
    assert [[j.num for j in g] for g in by_server(jobs)] == [[0, 2, 4], [1, 3]]
    assert [[j.num for j in g] for g in by_server(jobs, share=False)] == [[0], [1], [2], [3], [4]]
    # A preset field that changes the server (model.parallel) is another cluster job.
    other = compose(["model=tiny", "model.parallel=2"])
    assert len(by_server([jobs[0], SweepJob(5, Path("5"), [], {}, other, [])])) == 2


def test_a_job_its_cluster_job_did_not_finish_is_interrupted_only_when_cancelled():
    assert lost(None, "7_0", began=True) == (
        "interrupted", "cluster job 7_0 was stopped (SIGTERM: scancel or preemption) before this job finished")
    assert lost("CANCELLED by 0", "7_0", began=False)[0] == "interrupted"
    status, error = lost("FAILED", "7_1", began=True)
    assert status == "failed" and "ended FAILED" in error and error.endswith("before this job finished")
    assert "time limit" in lost("TIMEOUT", "7_1", began=False)[1]
    assert lost("ERROR OSError: disk full", "7_1", began=True) == (
        "failed", "cluster job 7_1 stopped on an ERROR OSError: disk full before this job finished")
    assert lost("NODE_FAIL", "7_1", began=False) == (
        "failed", "cluster job 7_1 ended NODE_FAIL (its process died: a node failure, out of memory, "
                  "or killed) before this job began")
