"""Hydra for the command line (cli.py, cluster.py and commands/ use it; nothing below them knows
Hydra): the run id and the resolvers conf/ uses (runids), where conf/ is and the typed schemas
in the ConfigStore (search_path), the compose API on conf/ and the typed config made of it
(composition), a command line's jobs as Hydra's sweeper expands them (sweep), the checks before
anything runs (prechecks), and Hydra's and OmegaConf's multi-line errors as one line (errors).
Import from here: these names are the package's interface."""
from __future__ import annotations

from benchrun.hydra_setup.composition import compose, group_options, hydra_conf, job_settings, to_config
from benchrun.hydra_setup.errors import ConfigError, explain
from benchrun.hydra_setup.prechecks import check_search, precheck, prerequisites_missing, search_of
from benchrun.hydra_setup.runids import RUN_ID_ENV, run_id, sweep_root
from benchrun.hydra_setup.search_path import conf_dir, register_configs, user_search_path
from benchrun.hydra_setup.sweep import declared_sweep, expand_sweep, interleave_rounds, sweep_jobs

__all__ = [
    "RUN_ID_ENV", "ConfigError", "check_search", "compose", "conf_dir", "declared_sweep", "expand_sweep",
    "explain", "group_options", "hydra_conf", "interleave_rounds", "job_settings", "precheck",
    "prerequisites_missing", "register_configs", "run_id", "search_of", "sweep_jobs", "sweep_root",
    "to_config", "user_search_path",
]
