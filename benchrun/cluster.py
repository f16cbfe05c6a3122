"""A sweep on a cluster (hydra/launcher=slurm_gpu, whose launcher is
hydra_plugins/benchrun_launcher): which sweep jobs go into one cluster job, and what the
submitting process writes when a cluster job ends. With cli.py and hydra_setup/ it reads
Hydra's composed configs; the launcher itself only submits and waits, and the cluster job runs
its sweep jobs through runner.py.

- One cluster job per server, not per sweep job: the jobs whose presets are equal (the rule by
  which the server pool shares a server, servers.pool.fingerprint) run in one cluster job, in
  sweep order, so a 17 GB model loads once for all of its concurrency levels; each level keeps
  its own job dir and result.
- resume=DIR: a job already ok there is not submitted again; for the others, earlier attempts
  are set aside before anything is submitted (resume.kept_on_resume).
- A cluster job that ends without the result of each of its jobs (a node failure, a killed
  process, scancel, the time limit) leaves one anyway: interrupted when it was cancelled, else
  failed, saying why, with the requests it had logged as partial metrics."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import open_dict

from benchrun.config import BenchConfig
from benchrun.hydra_setup import job_settings, run_id, to_config
from benchrun.job import write_lost_result
from benchrun.redact import redact
from benchrun.results import RESULT_FILE, read_result
from benchrun.resume import job_overrides, kept_on_resume
from benchrun.runner import status_line
from benchrun.servers.pool import fingerprint

CANCELLED = ("CANCELLED", "PREEMPTED")  # SLURM states of a job stopped on purpose


@dataclass
class SweepJob:
    """One job of the sweep, as known before it runs."""
    num: int
    dir: Path
    overrides: list[str]  # its identity: the overrides without resume=, report=, ...
    settings: dict  # job.settings of its result
    cfg: BenchConfig
    launch: list[str]  # the overrides as Hydra gave them: what the cluster job composes again


def sweep_job(sweep_config: Any, launch: list[str], num: int) -> SweepJob:
    """A job from its composed sweep config (Hydra's config loader, hydra node included)."""
    with open_dict(sweep_config.hydra.job):
        sweep_config.hydra.job.num = num  # the job dir's name holds it, as Hydra's own launch
    hc = sweep_config.hydra
    overrides = job_overrides(hc.overrides.task)
    settings = job_settings(sweep_config, overrides, hc.runtime.choices)
    task = sweep_config.copy()
    with open_dict(task):
        del task["hydra"]
    return SweepJob(num, Path(str(hc.sweep.dir)) / str(hc.sweep.subdir), overrides, settings,
                    to_config(task), list(launch))


def to_submit(jobs: list[SweepJob]) -> list[SweepJob]:
    """The jobs to run: on resume, those not already ok in the sweep dir."""
    out = []
    for j in jobs:
        if j.cfg.resume and kept_on_resume(j.dir, j.overrides, j.settings):
            print(f"[{j.dir.name}] ok: kept from the earlier run (resume), not submitted", flush=True)
        else:
            out.append(j)
    return out


def by_server(jobs: list[SweepJob], share: bool = True) -> list[list[SweepJob]]:
    """The cluster jobs: one per distinct preset (share=False: one per sweep job), each
    holding its sweep jobs in sweep order."""
    groups: dict[str, list[SweepJob]] = {}
    for j in jobs:
        groups.setdefault(fingerprint(j.cfg.model) if share else str(j.num), []).append(j)
    return list(groups.values())


def lost(state: Optional[str], cluster_job_id: str, began: bool) -> tuple[str, str]:
    """(status, error) of a job its cluster job did not finish. state: SLURM's final state;
    None when the cluster job's process stopped on SIGTERM by itself; "ERROR <exception>"
    when benchrun raised there."""
    if state is None or state.startswith(CANCELLED):
        what = f"cluster job {cluster_job_id} was stopped ({state or 'SIGTERM'}: scancel or preemption)"
        return "interrupted", what + (" before this job finished" if began else " before this job began")
    if state.startswith("TIMEOUT"):
        why = "hit its time limit (hydra.launcher.timeout_min)"
    elif state.startswith("ERROR"):  # benchrun raised in the cluster job (a bug: say which)
        why = f"stopped on an {state}"
    else:
        why = f"ended {state} (its process died: a node failure, out of memory, or killed)"
    return "failed", f"cluster job {cluster_job_id} {why} before this job " + ("finished" if began else "began")


def account(group: list[SweepJob], state: Optional[str], cluster_job_id: str) -> None:
    """After a cluster job ended: each of its jobs without a result.json gets one (see lost),
    then every job's status line is printed."""
    array_id, _, task = cluster_job_id.partition("_")
    cluster = {"scheduler": "slurm", "job_id": cluster_job_id, "array_job_id": array_id,
               "array_task_id": task or None, "state": state}
    written = [read_result(j.dir / RESULT_FILE) for j in group if (j.dir / RESULT_FILE).is_file()]
    for j in group:
        if not (j.dir / RESULT_FILE).is_file():
            status, error = lost(state, cluster_job_id, began=(j.dir / "requests.jsonl").is_file())
            # The node's hardware, as a job of this cluster job recorded it; else only its name.
            hardware = written[0]["hardware"] if written else {"name": j.cfg.hardware.name}
            write_lost_result(j.cfg, j.dir, j.num, run_id(), j.overrides, j.settings, status, error,
                              cluster, hardware)
        try:
            print(redact(status_line(j.dir.name, read_result(j.dir / RESULT_FILE))), flush=True)
        except (OSError, ValueError) as e:
            print(f"[{j.dir.name}] unreadable result.json: {e}", flush=True)
