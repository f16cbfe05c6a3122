"""Hydra sweeper plugin `hydra/sweeper=benchrun`: Hydra's basic grid, run in benchrun's order.

The grid is what Hydra's basic sweeper makes of `hydra.sweeper.params` and the command line
(benchrun.hydra_setup.expand_sweep); the order is benchrun's (benchrun/order.py: interleaved
rounds, seeded shuffles, or grouped = the grid's own order). Built on Hydra's public Sweeper
and launcher API, so any launcher (basic, submitit) runs the jobs. Hydra finds this module by
the `hydra_plugins` namespace; conf/config.yaml selects it.

With search=capacity (conf/search/capacity.yaml) it runs no grid of levels: per grid job it
probes the levels benchrun/analysis/capacity.py picks, one job at a time, and writes
capacity.json at the sweep root."""
# No `from __future__ import annotations`: Hydra's plugin scan executes this module before it is
# in sys.modules, where a dataclass with string annotations cannot resolve them.

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class OrderedSweeperConf:
    _target_: str = "hydra_plugins.benchrun_sweeper.ordered_sweeper.OrderedSweeper"
    max_batch_size: Optional[int] = None  # as Hydra's basic sweeper: jobs per launch, None = all
    params: Optional[Dict[str, str]] = None  # an experiment's declared sweep, as Hydra's basic
    order: str = "grouped"  # set by benchrun's CLI from `order` (interleave_rounds)
    order_seed: int = 0


ConfigStore.instance().store(group="hydra/sweeper", name="benchrun", node=OrderedSweeperConf,
                             provider="benchrun")


class OrderedSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 order: str = "grouped", order_seed: int = 0) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.order, self.order_seed = order, order_seed
        self.hydra_context: Optional[HydraContext] = None  # validate_batch_is_legal reads it
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from benchrun.hydra_setup import expand_sweep
        from benchrun.order import order_jobs

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's own sweepers do
        if self.config.get("search") is not None:
            return self._search(expand_sweep(self.params, arguments), sweep_dir)
        jobs = order_jobs(expand_sweep(self.params, arguments), self.order, self.order_seed)
        n = self.max_batch_size or len(jobs) or 1
        returns = []
        for start in range(0, len(jobs), n):
            batch = jobs[start:start + n]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            for r in results:
                _ = r.return_value  # a job that raised raises here, as with Hydra's basic sweeper
            returns.append(results)
        return returns

    def _search(self, grid: List[List[str]], sweep_dir: Path) -> Any:
        """search=capacity: per grid job (a preset, with its other settings), probes at the levels
        analysis/capacity.py picks, one job each, through the launcher like any sweep job.
        capacity.json (sweep root) is rewritten after every probe: an interrupted search keeps
        what it found, and resume=DIR, replaying the kept probes, goes on from there."""
        import time

        from benchrun import cluster
        from benchrun.analysis import capacity
        from benchrun.config import split_override
        from benchrun.results import RESULT_FILE

        variable = self.config.search.variable
        slo = OmegaConf.to_container(self.config.slo, resolve=True)
        load = self.hydra_context.config_loader.load_sweep_config
        found: Dict[str, Any] = {}
        num, returns = 0, []
        for base in grid:
            base = [o for o in base if split_override(o)[0] != variable]
            first = cluster.sweep_job(load(self.config, base), base, num).cfg
            s = first.search  # this grid job's: a swept search.parallel differs between them
            if s.parallel is not None:  # the context per slot held: ctx_size = per slot x slots
                per_slot = first.model.ctx_size // max(1, first.model.parallel)
                base = base + [f"model.parallel={s.parallel}", f"model.ctx_size={per_slot * s.parallel}"]
            parallel = s.parallel or first.model.parallel
            probes: List[Any] = []
            d, status, t0, pending = capacity.Decision(None), "interrupted", time.monotonic(), None
            try:
                while True:
                    d = capacity.decide(probes, s, parallel, time.monotonic() - t0)
                    if d.next_level is None:
                        status = "done"
                        break
                    again = sum(1 for p in probes if p.level == d.next_level)
                    level = int(d.next_level) if s.variable == "concurrency" else d.next_level
                    # A level's probes are its rounds, as an interleaved sweep's repeats: each its own
                    # job, and the report merges them back into one level with its spread.
                    ov = base + [f"{s.variable}={level:g}", f"repeats={s.max_repeats + 1}", f"round={again}"]
                    pending = (float(level), cluster.sweep_job(load(self.config, ov), ov, num).dir)
                    returns.append(self.launcher.launch([ov], initial_job_idx=num))
                    num += 1
                    probes.append(_probe(*pending, parallel, s.variable))
                    pending = None
                    _record(sweep_dir, found, capacity.summary(probes, s, capacity.Decision(None),
                                                               first.model.name, parallel, "running", slo))
            finally:  # also on Ctrl-C: every probe so far is in capacity.json, the cut one too
                if pending is not None and (pending[1] / RESULT_FILE).is_file():
                    probes.append(_probe(*pending, parallel, s.variable))
                entry = capacity.summary(probes, s, d if status == "done" else capacity.Decision(None),
                                         first.model.name, parallel, status, slo)
                _record(sweep_dir, found, entry)
            print(f"benchrun: capacity of {_words(entry)}", flush=True)
        return returns


def _probe(level: float, job_dir: Path, parallel: int, variable: str) -> Any:
    from benchrun.analysis.capacity import probe_of
    from benchrun.results import RESULT_FILE, read_result

    path = job_dir / RESULT_FILE
    res = read_result(path) if path.is_file() else {"status": "failed", "error": "the job wrote no result.json"}
    return probe_of(res, level, job_dir.name, parallel, variable)


def _words(entry: Dict[str, Any]) -> str:
    cap = entry["capacity"]
    found = "none" if cap is None else f"{cap:g} ({entry['unit']})"
    return f"{entry['preset']} (parallel={entry['parallel']}): {found}; limit {entry['limit']}; {entry['why']}"


def _record(sweep_dir: Path, found: Dict[str, Any], entry: Dict[str, Any]) -> None:
    """capacity.json, keyed by preset: with several slot counts searched (search.parallel swept)
    the entry is the best one's, all of them under by_parallel."""
    import json

    from benchrun.analysis.capacity import FILE
    from benchrun.results import atomic_write_text

    name = entry["preset"]
    old = found.get(name)
    cands = dict(old.get("by_parallel") or {str(old["parallel"]): old}) if old else {}
    cands[str(entry["parallel"])] = entry
    done = [c for c in cands.values() if c["capacity"] is not None]
    best = max(done, key=lambda c: c["capacity"]) if done else entry
    found[name] = {**best, "by_parallel": cands} if len(cands) > 1 else entry
    if len(cands) > 1:
        found[name]["best_parallel"] = best["parallel"]
    atomic_write_text(sweep_dir / FILE, json.dumps(found, indent=2) + "\n")
