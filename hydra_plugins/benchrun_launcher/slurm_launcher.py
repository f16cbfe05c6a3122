"""Hydra launcher plugin `hydra/launcher=benchrun_slurm` (conf/hydra/launcher/slurm_gpu.yaml
builds on it): Hydra's submitit SLURM launcher -- every submitit_slurm key works the same --
with benchrun's rules for a cluster (benchrun/cluster.py):

- one cluster job per server: a preset's concurrency levels run in one cluster job, which
  loads the model once (one_server_per_preset=false: one cluster job per sweep job);
- resume=DIR submits only the jobs not already ok there;
- the submitting process waits for every cluster job and never stops at a lost one: a job a
  cluster job did not finish (node failure, scancel, time limit) gets a failed or interrupted
  result, and the sweep's summary and report follow once all have ended."""
# No `from __future__ import annotations`: Hydra's plugin scan executes this module before it is
# in sys.modules, where a dataclass with string annotations cannot resolve them.

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf


@dataclass
class BenchrunSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.benchrun_launcher.slurm_launcher.BenchrunSlurmLauncher"
    one_server_per_preset: bool = True


ConfigStore.instance().store(group="hydra/launcher", name="benchrun_slurm", node=BenchrunSlurmConf,
                             provider="benchrun")


class BenchrunSlurmLauncher(SlurmLauncher):
    def __init__(self, one_server_per_preset: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.one_server_per_preset = one_server_per_preset
        self._launches = 0

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from benchrun import cluster

        load = self.hydra_context.config_loader.load_sweep_config
        jobs = [cluster.sweep_job(load(self.config, list(ov)), list(ov), initial_job_idx + i)
                for i, ov in enumerate(job_overrides)]
        groups = cluster.by_server(cluster.to_submit(jobs), self.one_server_per_preset)
        returns = {}
        if groups:
            executor = self._executor()
            state = Singleton.get_state()
            submitted = executor.map_array(self._run_group, [[(j.launch, j.num) for j in g] for g in groups],
                                           [state] * len(groups))
            for g, cj in zip(groups, submitted):
                print(f"benchrun: cluster job {cj.job_id}: {', '.join(j.dir.name for j in g)}", flush=True)
            for g, cj in zip(groups, submitted):
                final = None  # the cluster job returned: it stopped early only on SIGTERM
                try:
                    returns.update(zip((j.num for j in g), cj.results()[0]))
                except FailedJobError as e:  # benchrun itself failed in the cluster job
                    final = "ERROR " + str(e).strip().splitlines()[-1][:300]
                except UncompletedJobError:  # its process is gone: SLURM's state says why
                    final = cj.state
                cluster.account(g, final, cj.job_id)
        # Every job ended or is written as lost: the sweep goes on to its summary and report.
        return [returns.get(j.num) or JobReturn(overrides=j.launch, status=JobStatus.COMPLETED)
                for j in jobs]

    def _run_group(self, jobs: List[tuple], singleton_state: dict) -> List[JobReturn]:
        """In the cluster job: its sweep jobs, one after another, in this process."""
        from benchrun.runner import SESSION

        return SESSION.run_in_one_process([functools.partial(self, ov, "hydra.sweep.dir", num, f"job_id_for_{num}",
                                                     singleton_state) for ov, num in jobs])

    def _executor(self) -> Any:
        """submitit's executor from this launcher's keys, as Hydra's submitit launcher makes it.
        The first launch of an invocation sets aside an earlier one's submitit folder (resume
        into the same dir): SLURM job ids can repeat after a controller restart, and submitit
        would take a stale result file for the new job's."""
        import submitit

        params = dict(self.params)
        folder = str(params.pop("submitit_folder"))
        root = Path(folder.split("%j")[0])
        if self._launches == 0 and root.is_dir() and any(root.iterdir()):
            n = 1
            while root.with_name(f"{root.name}.previous-{n}").exists():
                n += 1
            root.rename(root.with_name(f"{root.name}.previous-{n}"))
        self._launches += 1
        init = ({f"{self._EXECUTOR}_max_num_timeout": params.pop("max_num_timeout")}
                if "max_num_timeout" in params else {})
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=folder, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor
