"""The command line. The only module that knows Hydra.

  benchrun [overrides]            one job          (benchrun model=tiny concurrency=2)
  benchrun -m [overrides]         a sweep          (benchrun -m model=tiny,tiny_wide concurrency=1,2,3)
  benchrun -m ... resume=DIR      finish a sweep: keep its ok jobs, rerun the rest into DIR
  benchrun report DIR             (re)write report.md, charts, summary.csv of a run or sweep dir
  benchrun diff A B               compare two run or sweep dirs

Exit codes: 0 done (failed jobs are data, see summary), 2 bad config, 130 interrupted.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from .config import register_configs, validate
from .servers import ServerPool

RUN_ID_ENV = "BENCHRUN_RUN_ID"
EXIT_CONFIG, EXIT_INTERRUPTED = 2, 130
_POOL = ServerPool()
_STATE: dict = {}  # the invocation's output dir, for the final message


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
    """conf/ of the checkout (or BENCHRUN_CONF), found from the package, not the cwd."""
    env = os.environ.get("BENCHRUN_CONF")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent / "conf"
    return here if here.is_dir() else (Path.cwd() / "conf").resolve()


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class StopServersCallback(Callback):
    """Stops every server when the run or sweep ends, and rewrites the sweep summary."""

    def on_multirun_start(self, config, **kwargs) -> None:
        _STATE["out_dir"] = Path(config.hydra.sweep.dir)

    def on_run_start(self, config, **kwargs) -> None:
        _STATE["out_dir"] = Path(config.hydra.run.dir).parent

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        # A submitit worker runs one job and exits: its server must go with it (the pool
        # lives in the worker's process and cannot be shared across workers).
        if "submitit" in str(config.hydra.launcher.get("_target_", "")):
            _POOL.close()

    def on_multirun_end(self, config, **kwargs) -> None:
        _POOL.close()
        _write_summary(Path(config.hydra.sweep.dir))  # workers on many nodes: one summary
        _auto_report(config, Path(config.hydra.sweep.dir))

    def on_run_end(self, config, **kwargs) -> None:
        _POOL.close()
        _auto_report(config, Path(config.hydra.run.dir).parent)


def _auto_report(config, root: Path) -> None:
    """report=true: report.md, charts and summary at the end of every run and sweep. Never
    raises: a report failure prints one line and the measured results stay."""
    if config.get("report", True) and root.is_dir():
        from .commands.report import auto_report

        auto_report(root)


def _write_summary(root: Path) -> None:
    from .summary import write_summary

    if root.is_dir():
        write_summary(root)


def _overrides_key(overrides) -> list[str]:
    return sorted(o for o in overrides if not o.startswith("resume="))


_JOB_FILES = ("result.json", "requests.jsonl", "server.log", "telemetry.jsonl", "error.log")


def _kept_on_resume(job_dir: Path, overrides: list[str]) -> bool:
    """resume=DIR: True when this job already finished ok there (same overrides). Any other
    earlier attempt is moved aside as *.previous.* (not deleted: it is measured data)."""
    from .results import RESULT_FILE, read_result

    prev = job_dir / RESULT_FILE
    if not prev.is_file():
        return False
    try:
        old = read_result(prev)
    except (OSError, ValueError):
        old = {}
    if old.get("status") == "ok" and _overrides_key(old.get("job", {}).get("overrides", [])) == _overrides_key(overrides):
        return True
    for name in _JOB_FILES:
        f = job_dir / name
        if f.is_file():
            f.replace(f.with_name(f"{f.stem}.previous{f.suffix}"))
    return False


def _job(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from .job import run_job

    _install_sigterm()  # again here: a submitit worker never ran main()
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    if cfg.resume and _kept_on_resume(job_dir, overrides):
        print(f"[{job_dir.name}] ok: kept from the earlier run (resume)", flush=True)
        _write_summary(job_dir.parent)
        return
    validate(cfg)
    res = run_job(cfg, job_dir, _POOL, job_num=hc.job.get("num", 0) or 0, run_id=run_id(),
                  overrides=overrides)
    from .servers.redact import redact

    print(redact(status_line(job_dir.name, res)), flush=True)
    _write_summary(job_dir.parent)


def status_line(name: str, res: dict) -> str:
    """One console line per job; a metric that could not be measured prints as n/a."""
    def num(v, unit: str) -> str:
        return f"{v:.1f} {unit}" if isinstance(v, (int, float)) else "n/a"

    line = f"[{name}] {res['status']}"
    if res["status"] != "ok":
        return f"{line}: {res['error']}"
    m = res["metrics"]
    return (f"{line}: {m['requests_ok']} requests, ttft p50 {num((m.get('ttft_ms') or {}).get('p50'), 'ms')}, "
            f"decode {num((m.get('decode_tok_s') or {}).get('mean'), 'tok/s')}, "
            f"{num(m.get('output_throughput_tok_s'), 'tok/s')} total")


# --- signals ------------------------------------------------------------------------------

def _on_sigterm(signum, frame) -> None:
    """SIGTERM takes Ctrl-C's path: whatever handles SIGINT now (asyncio's runner cancels the
    load cleanly; elsewhere Python raises KeyboardInterrupt) handles this too."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def _install_sigterm() -> None:
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread: leave it to whoever owns signals there
            pass


# --- config errors --------------------------------------------------------------------------

class ConfigError(Exception):
    """A bad command line or config; the message is one line for the user."""


def _split_argv(argv: list[str]) -> tuple[bool, list[str]] | None:
    """(multirun, overrides), or None when Hydra flags (--cfg, -cn, ...) are given: then
    Hydra alone handles the command line."""
    multirun, overrides = False, []
    for a in argv:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a.startswith("-"):
            return None
        else:
            overrides.append(a)
    return multirun, overrides


def _group_options(exc) -> list[str]:
    return sorted(o for o in (getattr(exc, "options", None) or []) if not o.startswith("base_"))


def _keys_at(parent: str) -> list[str]:
    """The keys a config node has (for 'unknown key' messages)."""
    from hydra import compose

    node = compose("config")
    for part in filter(None, parent.split(".")):
        node = node.get(part) if hasattr(node, "get") else None
    return sorted(node.keys()) if hasattr(node, "keys") else []


def _explain(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line errors -> one line naming the key and what is allowed."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, MissingConfigException):
        first = str(exc).splitlines()[0]
        missing = first.split("Could not find '", 1)[-1].rstrip("'")
        group, _, name = missing.rpartition("/")
        if group:
            return f"unknown {group} '{name}'; allowed: {', '.join(_group_options(exc))}"
        return first
    if isinstance(exc, OverrideParseException):
        return f"cannot parse override: {str(exc).splitlines()[0]}"
    cause = exc.__cause__ or exc
    if isinstance(cause, (ConfigKeyError, AttributeError)) and getattr(cause, "full_key", None):
        key = cause.full_key
        parent = key.rpartition(".")[0]
        where = f"'{parent}'" if parent else "the top level"
        return f"unknown config key '{key}'; keys at {where}: {', '.join(_keys_at(parent))}"
    if isinstance(cause, MissingMandatoryValue):
        return f"{cause.full_key} is required but not set (add {cause.full_key}=...)"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        return f"bad value for {cause.full_key}: {str(cause.msg).splitlines()[0]}"
    if isinstance(exc, ConfigCompositionException):
        return " ".join(str(exc).split("\n")[0:1]) + (" (sweeps need -m)" if "Ambiguous value" in str(exc) else "")
    if isinstance(exc, ValueError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def precheck(argv: list[str], max_jobs: int = 256) -> None:
    """Compose and validate every job of the command line with Hydra's compose API before
    anything starts, so a typo in the fifth job of a sweep fails now, in one line, instead of
    after an hour of measuring. Raises ConfigError."""
    split = _split_argv(argv)
    if split is None:
        return
    multirun, overrides = split
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        jobs = [o for batch in BasicSweeper.split_arguments(parsed, None) for o in batch] if multirun else [overrides]
    except Exception as e:  # noqa: BLE001 -- turned into one line below
        raise ConfigError(_explain(e)) from e
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            for job in jobs[:max_jobs]:
                try:
                    cfg = compose("config", overrides=list(job))
                    validate(cfg)
                    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
                except Exception as e:  # noqa: BLE001 -- turned into one line
                    raise ConfigError(_explain(e)) from e
    finally:
        GlobalHydra.instance().clear()


def _resume_dir(argv: list[str]) -> Path | None:
    """resume=DIR: the sweep dir to finish; its run id becomes this invocation's."""
    vals = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not vals or not vals[-1] or vals[-1] in ("null", "None"):
        return None
    d = Path(vals[-1])
    if not d.is_dir():
        raise ConfigError(f"resume: no such run or sweep dir: {d}")
    from .results import find_results, read_result

    rid = d.resolve().name
    for p in find_results(d)[:1]:
        try:
            rid = read_result(p).get("run_id") or rid
        except (OSError, ValueError):
            pass
    os.environ[RUN_ID_ENV] = rid
    return d


def _debug(argv: list[str]) -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or any(
        a.lower() in ("debug=true", "debug=1", "debug=yes") for a in argv)


# --- entry ------------------------------------------------------------------------------------

def _run_hydra(argv: list[str]) -> int:
    import hydra

    register_configs()
    sys.argv = [sys.argv[0], *argv]
    main_fn = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_job)
    main_fn()
    out = _STATE.get("out_dir")
    if out is not None:
        print(f"benchrun: results in {out}")
    return 0


def _interrupted() -> int:
    """Ctrl-C / SIGTERM: stop every server, summarise what was measured, exit 130. Further
    signals are ignored meanwhile, so a second Ctrl-C cannot leave a server behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _POOL.close()
    out = _STATE.get("out_dir")
    print("benchrun: interrupted; every server benchrun started is stopped", file=sys.stderr, flush=True)
    if out is not None:
        try:
            _write_summary(out)
        except Exception as e:  # noqa: BLE001 -- the exit must still happen
            print(f"benchrun: could not write the summary: {e}", file=sys.stderr)
        print(f"benchrun: resume with: benchrun -m <same overrides> resume={out}   "
              f"(report: benchrun report {out})", file=sys.stderr, flush=True)
        print(f"benchrun: results in {out}", flush=True)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("report", "diff", "presets", "serve"):
        import importlib

        run_id()
        mod = importlib.import_module(f".commands.{argv[0]}", __package__)
        return mod.main(argv[1:])
    _install_sigterm()
    try:
        register_configs()
        _resume_dir(argv)
        run_id()
        precheck(argv)
    except ConfigError as e:
        if _debug(argv):
            import traceback

            traceback.print_exception(e.__cause__ or e)
        print(f"benchrun: config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    try:
        return _run_hydra(argv)
    except KeyboardInterrupt:
        return _interrupted()
    finally:
        _POOL.close()

