"""Bad config: one clear line naming the key and what is allowed, exit 2, no traceback."""
from __future__ import annotations

import signal

import pytest

from benchrun import cli

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
]


@pytest.fixture
def keep_signals(monkeypatch):
    """main() installs a SIGTERM handler; give pytest its own back."""
    saved = signal.getsignal(signal.SIGTERM)
    monkeypatch.delenv("BENCHRUN_RUN_ID", raising=False)
    yield
    signal.signal(signal.SIGTERM, saved)


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


@pytest.mark.slow
def test_cli_subprocess_exit_code_and_debug_traceback(cli):
    proc, cwd = cli("-m", "model=tiny,nope", "concurrency=1,2")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("benchrun: config error: unknown model 'nope'; allowed: ")
    assert "Traceback" not in proc.stderr and not (cwd / "outputs").exists()
    # debug=true shows where it came from, and still exits 2.
    proc, _ = cli("concurrency=0", "debug=true")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("benchrun: config error:")
