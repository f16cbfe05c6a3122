"""Bad config: one clear line naming the key and what is allowed, exit 2, no traceback.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_cli_errors.py."""
from __future__ import annotations

from pathlib import Path


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


def test_help_and_version_are_benchruns_own(cli):
    proc, _ = cli("--help")
    assert proc.returncode == 0 and "powered by Hydra" not in proc.stdout
    for sub in ("report DIR", "diff A B", "presets", "serve model=NAME", "build-server", "calibrate"):
        assert f"benchrun {sub}" in proc.stdout, sub
    groups = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ") and
              line.split()[0] in ("model", "workload", "hardware", "experiment")}
    shipped = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "model").glob("*.yaml")
                     if not p.stem.startswith("base_"))
    assert groups["model"].split(None, 1)[1] == ", ".join(shipped)  # read from conf/, not written down
    assert "base_" not in proc.stdout
    proc, _ = cli("--version")
    import xllamacpp

    assert proc.returncode == 0 and proc.stdout.startswith("benchrun 0.")
    assert f"embedded llama.cpp: xllamacpp {xllamacpp.__version__}" in proc.stdout
    assert "Hydra" in cli("--hydra-help")[0].stdout  # Hydra's own page is still there
