"""Bad config: one clear line naming the key and what is allowed, exit 2, no traceback.
This half needs no server, process or socket; the rest is in tests/integration/test_cli_errors.py."""
from __future__ import annotations

import shutil
import signal

import pytest
from support import CONF

from benchrun import cli
from benchrun.hydra_setup import precheck

CASES = [
    (["foo=1"], ["unknown config key 'foo'", "concurrency", "model"]),
    (["model.ctx_sise=8"], ["unknown config key 'model.ctx_sise'", "ctx_size"]),
    (["concurrency=abc"], ["concurrency", "Integer"]),
    (["model.ctx_size=1.5"], ["model.ctx_size", "Integer"]),
    (["model=nope"], ["unknown model 'nope'", "tiny", "tiny_wide", "external"]),
    (["workload=nope"], ["unknown workload 'nope'", "synthetic"]),
    (["concurrency=0"], ["concurrency must be a positive integer, got 0"]),
    (["-m", "concurrency=1,2,-3"], ["concurrency must be a positive integer, got -3"]),
    (["model=external"], ["model.url is required"]),
    (["concurrency=1,2"], ["concurrency=1,2", "-m"]),
    (["concurrency=[1"], ["cannot parse override"]),
    (["hydra/launcher=nope"], ["unknown hydra/launcher 'nope'", "basic", "submitit_local"]),
    (["resume=/nonexistent/sweep"], ["resume", "/nonexistent/sweep"]),
    (["workload.output_tokens=0"], ["workload.output_tokens must be a positive integer, got 0"]),
    (["slo.ttft_ms=-5"], ["slo.ttft_ms must be > 0 ms", "-5"]),
    (["model.port=99999"], ["model.port must be 0-65535", "99999"]),
    (["model=external", "model.url=localhost:8000"], ["model.url must start with http://"]),
    (["workload=replay", "workload.path=/nonexistent/t.jsonl"], ["workload.path: no such file"]),
    # Each workload kind and backend owns its part of the schema: another's field is refused.
    (["workload=agentic_coding", "workload.requests=5"],
     ["workload.requests is read by workload kind synthetic only; this workload (agentic_coding) is kind agentic"]),
    (["workload.path=trace.jsonl"], ["workload.path is read by workload kind replay only"]),
    (["model.command=[serve,'{port}']"], ["model.command is read by backend command only"]),
    (["hydra.run.dir=/dev/null/x"], ["hydra.run.dir: cannot create /dev/null/x"]),
    (["-m", "concurrency=1,2", "hydra.sweep.dir=/dev/null/x"], ["hydra.sweep.dir: cannot create /dev/null/x"]),
]


@pytest.fixture
def keep_signals(monkeypatch):
    """main() installs SIGINT and SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.delenv("BENCHRUN_RUN_ID", raising=False)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("argv,needles", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_config_is_one_line_exit_2(argv, needles, capsys, keep_signals, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("benchrun: config error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in err + out
    assert not (tmp_path / "outputs").exists()  # nothing ran


@pytest.fixture
def conf_with_typo(tmp_path, monkeypatch):
    """A copy of conf/ (BENCHRUN_CONF) with experiment=typo, whose own sweep has a bad value."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    monkeypatch.setenv("BENCHRUN_CONF", str(conf))

    def write(**params):
        lines = "".join(f"      {k}: {v}\n" for k, v in params.items())
        (conf / "experiment" / "typo.yaml").write_text(
            f"# @package _global_\nhydra:\n  sweeper:\n    params:\n{lines}")
    return write


@pytest.mark.parametrize("params,needle", [
    ({"model": "tiny,tiny_wdie", "concurrency": "1,2"}, "unknown model 'tiny_wdie'; allowed: "),
    ({"concurrency": "1,two"}, "bad value for concurrency: "),
], ids=["model", "concurrency"])
def test_an_experiments_own_sweep_is_checked_before_anything_runs(
        conf_with_typo, params, needle, capsys, keep_signals, tmp_path, monkeypatch):
    conf_with_typo(**params)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["-m", "experiment=typo"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"benchrun: config error: {needle}"), err
    assert "Traceback" not in err + out and not (tmp_path / "outputs").exists()


def test_sweep_jobs_are_the_experiments_params_with_the_command_line_winning(conf_with_typo):
    conf_with_typo(model="tiny,tiny_wdie", concurrency="1,2")
    # model=tiny on the command line replaces the experiment's (bad) model list, as in Hydra.
    assert precheck(["experiment=typo", "model=tiny"], multirun=True) == [
        ["model=tiny", "concurrency=1", "experiment=typo"],
        ["model=tiny", "concurrency=2", "experiment=typo"]]
    # Without -m an experiment's sweep is not expanded (Hydra ignores it for a single run).
    assert precheck(["experiment=typo"], multirun=False) == [["experiment=typo"]]


def test_an_experiment_without_m_warns_that_one_job_runs(conf_with_typo, capsys):
    conf_with_typo(model="tiny,tiny_wide", concurrency="1,2")
    assert precheck(["experiment=typo"], multirun=False) == [["experiment=typo"]]
    err = capsys.readouterr().err
    assert ("benchrun: warning: this config declares a sweep (model=tiny,tiny_wide concurrency=1,2); without -m "
            "only one job runs (for the sweep: benchrun -m experiment=typo)") in err
    precheck(["model=tiny"], multirun=False)
    assert "warning" not in capsys.readouterr().err  # no experiment, no sweep, no warning


def test_plus_experiment_says_what_to_type(capsys, keep_signals, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["+experiment=demo"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "benchrun: config error: experiment is already chosen by the defaults: write experiment=NAME, without the +"]


def test_shipped_demo_experiment_expands_to_its_six_jobs():
    jobs = precheck(["experiment=demo"], multirun=True)
    assert [j[:2] for j in jobs] == [[f"model={m}", f"concurrency={c}"]
                                     for m in ("smollm2", "smollm2_1slot") for c in (1, 2, 3)]
    assert len(precheck(["experiment=demo", "concurrency=2"], multirun=True)) == 2


def test_slurm_launcher_without_slurm_is_one_line(capsys, keep_signals, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here, whatever the machine has
    assert cli.main(["-m", "hydra/launcher=slurm_gpu", "concurrency=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["benchrun: config error: hydra/launcher: a SLURM launcher, but this machine has no "
                   "sbatch (run it on a cluster login node, or use hydra/launcher=submitit_local)"]
    assert not (tmp_path / "outputs").exists()
