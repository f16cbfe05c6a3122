"""Hydra's compose API on conf/: a config for a list of overrides (compose, inside hydra_conf()),
the typed BenchConfig made of it (to_config: the one place a DictConfig becomes one), what a
job's command line set as values (job_settings) and a group's options (group_options)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from omegaconf import OmegaConf

from benchrun.config import BenchConfig, split_override
from benchrun.hydra_setup.search_path import conf_dir, register_configs


@contextlib.contextmanager
def hydra_conf() -> Iterator[None]:
    """Hydra's compose API on conf/ for the duration; cleared afterwards (also on errors), so
    a later hydra.main or compose can initialise it again."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            yield
    finally:
        GlobalHydra.instance().clear()


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False) -> Any:
    """The config a run with these overrides gets. Inside hydra_conf(), else it opens one."""
    from hydra import compose as hydra_compose
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        with hydra_conf():
            return compose(overrides, return_hydra_config)
    return hydra_compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def to_config(cfg: Any) -> BenchConfig:
    """A composed config as the typed objects everything below the CLI receives (config.py),
    interpolations resolved: the one place a DictConfig becomes a BenchConfig."""
    return OmegaConf.to_object(cfg)


def job_settings(composed: Any, overrides: list[str], choices: Any) -> dict[str, Any]:
    """What a job's command line set, as values: {key: resolved value} for each override (a
    config group's key gets the option chosen: model -> "tiny"). result.json records it
    (job.settings), so report labels, merged rounds and resume compare values, never parse
    override strings or directory names."""
    out: dict[str, Any] = {}
    for o in overrides:
        key = split_override(o)[0]
        if key in choices:
            out[key] = choices[key]
        else:
            v = OmegaConf.select(composed, key, default=None)
            out[key] = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    return out


def group_options(group: str) -> list[str]:
    """The options of a config group (model, workload, ...), schemas left out. Inside hydra_conf()."""
    from hydra.core.global_hydra import GlobalHydra

    return sorted(n for n in GlobalHydra.instance().config_loader().get_group_options(group)
                  if not n.startswith("base_"))
