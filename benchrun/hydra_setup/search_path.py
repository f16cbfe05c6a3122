"""Where the configs are, and their schemas: the shipped conf/ (conf_dir), the user's own
./conf and ./experiments searched before it (user_search_path, read by hydra_plugins/
benchrun_user_conf), and the typed schemas of config.py in Hydra's ConfigStore under the names
conf/ gives them (register_configs)."""
from __future__ import annotations

import os
from pathlib import Path

from benchrun.config import BenchConfig, HardwareConfig, ModelConfig, SearchConfig, WorkloadConfig


def conf_dir() -> Path:
    """The configs benchrun ships: $BENCHRUN_CONF, else conf/ of the checkout this package runs
    from, else the copy inside the installed package (benchrun/conf, mapped there by the wheel
    build). Never the cwd: that is the user's own layer (user_search_path)."""
    env = os.environ.get("BENCHRUN_CONF")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent  # the benchrun package
    checkout = here.parent / "conf"
    return checkout if (checkout / "config.yaml").is_file() else here / "conf"


def user_search_path() -> list[Path]:
    """The user's own config dirs, searched before the shipped ones (hydra_plugins/
    benchrun_user_conf): ./conf (its groups: model/, workload/, hardware/, experiment/) and
    ./experiments (the `experiment` group), in $BENCHRUN_USER_DIR or the current directory."""
    base = Path(os.environ.get("BENCHRUN_USER_DIR") or Path.cwd()).resolve()
    shipped = conf_dir().resolve()
    out = []
    conf = base / "conf"
    if conf.is_dir() and conf.resolve() != shipped:
        out.append(conf)
    exps = base / "experiments"
    if exps.is_dir() and exps.resolve() != (shipped / "experiment").resolve():
        out.append(_experiments_root(exps))
    return out


def _experiments_root(exps: Path) -> Path:
    """A dir whose `experiment` entry is the user's experiments/ (Hydra finds a group by its
    dir name), made once per experiments dir in the cache."""
    import hashlib

    from benchrun.provision.tinymodel import default_cache_dir

    root = default_cache_dir().parent / "user-experiments" / hashlib.sha256(str(exps).encode()).hexdigest()[:16]
    link = root / "experiment"
    if not link.is_symlink() or link.resolve() != exps:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".experiment.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(exps, target_is_directory=True)
        tmp.replace(link)
    return root


def register_configs() -> None:
    """The typed schemas (benchrun/config.py) in Hydra's ConfigStore, as conf/ names them."""
    from hydra.core.config_store import ConfigStore

    # hydra/launcher=benchrun_slurm and hydra/sweeper=benchrun are stored by their plugins, which
    # Hydra imports itself when it scans the hydra_plugins namespace package.
    cs = ConfigStore.instance()
    if "base_config.yaml" in cs.repo:  # stored once per process: each store builds the schema (~12 ms)
        return
    cs.store(name="base_config", node=BenchConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="hardware", name="base_hardware", node=HardwareConfig)
    cs.store(group="workload", name="base_workload", node=WorkloadConfig)
    cs.store(group="search", name="base_search", node=SearchConfig)
