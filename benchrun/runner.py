"""Running sweep jobs in this process, below the command line: the one server pool a process
keeps (a preset's server outlives a job, never the process), a job run from its typed config
with its console line and the sweep summary after it, and a cluster job's several sweep jobs run
one after another in one process. The CLI (cli.py), the SLURM launcher plugin and cluster.py
use this module; it knows neither Hydra nor the CLI.

  SESSION.run(cfg, job_dir, ...)        one job: resume check, validate, run_job, status line
  SESSION.run_in_one_process(jobs)      a cluster job's jobs in sweep order, one shared pool
  status_line(name, result)             the job's console line"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from benchrun import interrupts
from benchrun.config import BenchConfig, validate
from benchrun.redact import redact
from benchrun.resume import kept_on_resume
from benchrun.servers import ServerPool


@dataclass
class Session:
    """What one benchrun process holds across its jobs."""

    pool: ServerPool = field(default_factory=ServerPool)
    out_dir: Optional[Path] = None  # the invocation's output dir, for the final message
    jobs_total: Optional[int] = None  # for the progress line's "job i/N"

    def run(self, cfg: BenchConfig, job_dir: Path, job_num: int, run_id: str, overrides: list[str],
            settings: dict) -> None:
        """One sweep job: kept as it is on resume when already ok, else run and written."""
        from benchrun.job import run_job

        if cfg.resume and kept_on_resume(job_dir, overrides, settings):
            print(f"[{job_dir.name}] ok: kept from the earlier run (resume)", flush=True)
        else:
            validate(cfg)
            res = run_job(cfg, job_dir, self.pool, job_num=job_num, run_id=run_id, overrides=overrides,
                          settings=settings, jobs_total=self.jobs_total)
            print(redact(status_line(job_dir.name, res)), flush=True)
        write_summary(job_dir.parent)

    def run_in_one_process(self, jobs: list[Callable[[], object]]) -> list:
        """A cluster job's sweep jobs (callables, in sweep order) in this one process, so jobs of
        one preset share its server (the pool); it stops after the last. SIGTERM (scancel,
        preemption) stops the job running -- its result says interrupted -- and the rest are not
        begun: the submitting process writes their results (benchrun/cluster.py)."""
        interrupts.install(take_over=True)
        done = []
        try:
            for job in jobs:
                done.append(job())
        except KeyboardInterrupt:
            interrupts.ignore()
        finally:
            self.close()
        return done

    def close(self) -> None:
        """Stops every server this process started."""
        self.pool.close()


SESSION = Session()  # one per process


def write_summary(root: Path) -> None:
    from benchrun.report.summary import write_summary as write

    if root.is_dir():
        write(root)


def status_line(name: str, res: dict) -> str:
    """One console line per job; a metric that could not be measured prints as n/a."""
    def num(v, unit: str) -> str:
        return f"{v:.1f} {unit}" if isinstance(v, (int, float)) else "n/a"

    line = f"[{name}] {res['status']}"
    if res["status"] != "ok":
        return f"{line}: {res['error']}"
    from benchrun.measure.views import (  # its metrics, read as the report reads them
        STATUS_LINE,
        value,
    )

    parts = [tmpl.format(num(value(res, m.key), m.unit)) for tmpl, m in STATUS_LINE]
    return f"{line}: {res['metrics']['requests_ok']} requests, " + ", ".join(parts)
