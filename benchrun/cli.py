"""The command line: Hydra's main, its task function and callbacks, signals. With
hydra_setup/, cluster.py and commands/, the only code that knows Hydra; running the jobs
themselves (the server pool, status lines, a cluster job's jobs) is runner.py's.

  benchrun [overrides]            one job          (benchrun model=tiny concurrency=2)
  benchrun -m [overrides]         a sweep          (benchrun -m model=tiny,tiny_wide concurrency=1,2,3)
  benchrun -m ... resume=DIR      finish a sweep: keep its ok jobs, rerun the rest into DIR
  benchrun report DIR             (re)write report.md, charts, summary.csv of a run or sweep dir
  benchrun diff A B               compare two run or sweep dirs
  benchrun presets | serve ...    list the model presets | serve one (benchrun/commands/)
  benchrun build-server           build llama.cpp's llama-server into the cache (once per build)

Exit codes: 0 done (failed jobs are data, see summary), 2 bad config, 130 interrupted.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from benchrun import interrupts
from benchrun.hydra_setup import (
    ConfigError,
    conf_dir,
    interleave_rounds,
    job_settings,
    precheck,
    register_configs,
    run_id,
    search_of,
    to_config,
)
from benchrun.resume import job_overrides, resume_dir
from benchrun.runner import SESSION, write_summary

EXIT_CONFIG, EXIT_INTERRUPTED = 2, 130


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class StopServersCallback(Callback):
    """Stops every server when the run or sweep ends, and rewrites the sweep summary."""

    def on_multirun_start(self, config, **kwargs) -> None:
        SESSION.out_dir = Path(config.hydra.sweep.dir)

    def on_run_start(self, config, **kwargs) -> None:
        SESSION.out_dir = Path(config.hydra.run.dir).parent

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        # A plain submitit worker runs one job and exits: its server must go with it (the pool
        # lives in the worker's process). benchrun's own launcher runs a preset's jobs in one
        # worker and stops the server after the last (runner.Session.run_in_one_process).
        if "hydra_submitit_launcher" in str(config.hydra.launcher.get("_target_", "")):
            SESSION.close()

    def on_multirun_end(self, config, **kwargs) -> None:
        SESSION.close()
        _finish(config, Path(config.hydra.sweep.dir))

    def on_run_end(self, config, **kwargs) -> None:
        SESSION.close()
        _finish(config, Path(config.hydra.run.dir).parent)


def _finish(config, root: Path) -> None:
    """End of a run or sweep: the report (which writes the summary first), or with report=false
    the summary alone -- one summary over every job, also those run on other nodes."""
    if config.get("report", True) and root.is_dir():
        _auto_report(root)
    else:
        write_summary(root)


def _auto_report(root: Path) -> None:
    """report.md, charts and summary. Never raises: a report failure prints one line and the
    measured results stay."""
    from benchrun.commands.report import auto_report

    auto_report(root)


def _job(composed) -> None:
    """Hydra's task function: the job's dir, overrides and typed config, run by the runner."""
    from hydra.core.hydra_config import HydraConfig

    interrupts.install()  # again here: a submitit worker never ran main()
    hc = HydraConfig.get()
    overrides = job_overrides(hc.overrides.task)
    SESSION.run(to_config(composed), Path(hc.runtime.output_dir), hc.job.get("num", 0) or 0, run_id(),
                overrides, job_settings(composed, overrides, hc.runtime.choices))


# --- the command line -----------------------------------------------------------------------

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
    out = SESSION.out_dir
    if out is not None:
        print(f"benchrun: results in {out}")
    return 0


def _interrupted() -> int:
    """Ctrl-C / SIGTERM: stop every server, summarise what was measured, exit 130 (further
    signals are ignored meanwhile: see interrupts.py)."""
    interrupts.ignore()
    SESSION.close()
    out = SESSION.out_dir
    print("benchrun: interrupted; every server benchrun started is stopped", file=sys.stderr, flush=True)
    if out is not None:
        try:
            write_summary(out)
        except Exception as e:  # noqa: BLE001 -- the exit must still happen
            print(f"benchrun: could not write the summary: {e}", file=sys.stderr)
        print(f"benchrun: resume with: benchrun -m <same overrides> resume={out}   "
              f"(report: benchrun report {out})", file=sys.stderr, flush=True)
        print(f"benchrun: results in {out}", flush=True)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--help", "-h", "--version"):
        from benchrun.commands.about import help_text, version_text

        print(version_text() if argv[0] == "--version" else help_text())
        return 0
    if argv and argv[0] == "--hydra-help":
        argv[0] = "--help"  # Hydra's own page
    if argv and argv[0] in ("report", "diff", "presets", "serve", "build-server", "calibrate"):
        import importlib

        run_id()
        mod = importlib.import_module(f".commands.{argv[0].replace('-', '_')}", __package__)
        return mod.main(argv[1:])
    interrupts.install()
    try:
        resume_dir(argv)
        run_id()
        split = _split_argv(argv)
        if split is not None:
            jobs = precheck(split[1], multirun=split[0])
            SESSION.jobs_total = len(jobs)
            if split[0] and search_of(jobs[0]) is not None:
                SESSION.jobs_total = None  # the search picks its probes as it goes
            elif split[0]:
                order, seed, repeats = interleave_rounds(split[1], jobs)
                if order != "grouped":  # each repeat its own job, in rounds (order.py)
                    argv = argv + ["round=" + ",".join(str(r) for r in range(repeats)),
                                   f"hydra.sweeper.order={order}", f"hydra.sweeper.order_seed={seed}"]
                    SESSION.jobs_total = len(jobs) * repeats
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
        SESSION.close()

