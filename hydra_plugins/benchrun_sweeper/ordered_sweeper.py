"""Hydra sweeper plugin `hydra/sweeper=benchrun`: Hydra's basic grid, run in benchrun's order.

The grid is what Hydra's basic sweeper makes of `hydra.sweeper.params` and the command line
(benchrun.hydra_setup.expand_sweep); the order is benchrun's (benchrun/order.py: interleaved
rounds, seeded shuffles, or grouped = the grid's own order). Built on Hydra's public Sweeper
and launcher API, so any launcher (basic, submitit) runs the jobs. Hydra finds this module by
the `hydra_plugins` namespace; conf/config.yaml selects it."""
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

        jobs = order_jobs(expand_sweep(self.params, arguments), self.order, self.order_seed)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's own sweepers do
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
