"""The command line. The only module that knows Hydra.

  benchrun [overrides]            one job          (benchrun model=tiny concurrency=2)
  benchrun -m [overrides]         a sweep          (benchrun -m model=tiny,tiny_wide concurrency=1,2,3)
  benchrun report DIR             (re)write report.md, charts, summary.csv of a run or sweep dir
  benchrun diff A B               compare two run or sweep dirs
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from pathlib import Path

from omegaconf import OmegaConf

from .config import register_configs, validate
from .servers import ServerPool

RUN_ID_ENV = "BENCHRUN_RUN_ID"
_POOL = ServerPool()
_STATE: dict = {}  # the invocation's output dir, for the final message


def run_id() -> str:
    """One id per invocation, shared with child processes (submitit workers) via the env.
    Timestamp plus random suffix: two runs started in the same second never share a dir."""
    if RUN_ID_ENV not in os.environ:
        os.environ[RUN_ID_ENV] = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_") + secrets.token_hex(3)
    return os.environ[RUN_ID_ENV]


OmegaConf.register_new_resolver("run_id", run_id, replace=True)


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

    def on_multirun_end(self, config, **kwargs) -> None:
        _POOL.close()

    def on_run_end(self, config, **kwargs) -> None:
        _POOL.close()


def _job(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from .job import run_job
    from .summary import write_summary

    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    validate(cfg)
    res = run_job(cfg, job_dir, _POOL, job_num=hc.job.get("num", 0) or 0, run_id=run_id(),
                  overrides=list(hc.overrides.task))
    line = f"[{job_dir.name}] {res['status']}"
    if res["status"] == "ok":
        m = res["metrics"]
        line += (f": {m['requests_ok']} requests, ttft p50 {m['ttft_ms']['p50']:.1f} ms, "
                 f"decode {m['decode_tok_s']['mean']:.1f} tok/s, {m['output_throughput_tok_s']:.1f} tok/s total")
    else:
        line += f": {res['error']}"
    print(line, flush=True)
    write_summary(job_dir.parent)


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_id()
    if argv and argv[0] in ("report", "diff", "presets", "serve"):
        import importlib

        mod = importlib.import_module(f".commands.{argv[0]}", __package__)
        return mod.main(argv[1:])
    try:
        return _run_hydra(argv)
    finally:
        _POOL.close()

