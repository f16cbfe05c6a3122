"""The `command` backend: any OpenAI-compatible server from the user's own argv template, here
the real llama-server (CI builds it), launched, health-checked on model.health_path, measured
and stopped like the built-in backends; a bad template is one line before anything runs.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_command_backend.py."""
from __future__ import annotations

import json
import re
import subprocess

import psutil
import pytest
from support import output_dir_of

from benchrun.servers.base import default_threads


@pytest.mark.parametrize("over, msg", [
    ([], "model.command is required for backend=command"),
    (["model.command=[srv,--port,8000]"], "model.command must contain {port}"),
    (["model.command=[srv,--port,'{port}']", "model.health_path=health"], "model.health_path must start with /"),
])
def test_a_bad_command_preset_is_one_line_and_exit_2(cli, over, msg):
    proc, cwd = cli("model=tiny", "model.backend=command", *over)
    assert proc.returncode == 2 and msg in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (cwd / "outputs").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sweep_through_a_users_command_runs_the_real_server(cli, llama_server_bin):  # noqa: F811
    argv = ",".join([llama_server_bin, "-m", "'{model}'", "--host", "'{host}'", "--port", "'{port}'", "-c",
                     "'{ctx_size}'", "-np", "'{parallel}'", "--threads", "'{threads}'", "--metrics"])
    proc, cwd = cli("-m", "model=tiny", "model.backend=command", f"model.command=[{argv}]",
                    "model.health_path=/v1/models", "concurrency=1,2", "workload.requests=4",
                    "workload.output_tokens=16", "report=false", timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    assert [j["job"]["name"] for j in jobs] == ["0_tiny_c1", "1_tiny_c2"]
    for res in jobs:
        assert res["status"] == "ok", res["error"]
        assert res["metrics"]["requests_ok"] == 4 and res["metrics"]["output_tokens"] == 4 * 16
        assert res["server"]["backend"] == "command"
    cmd = jobs[0]["server"]["command"]
    assert cmd[0] == llama_server_bin and cmd[cmd.index("-m") + 1] == jobs[0]["model"]["path"]
    assert cmd[cmd.index("-c") + 1] == "16384" and cmd[cmd.index("--port") + 1].isdigit()
    assert cmd[cmd.index("--threads") + 1] == str(default_threads())  # unset: benchrun's default
    # Its /props named a llama.cpp build, so it is measured as one: per-chunk token counts asked.
    # The build as llama-server itself reports it: b<number>-<commit>, the very build and commit
    # its --version prints ("version: 0.6.0-dev (build 11434, commit unknown)" -- no git in an
    # sdist -- or, from older builds, "version: 11434 (unknown)").
    ver = subprocess.run([llama_server_bin, "--version"], capture_output=True, text=True, timeout=60)
    said = re.search(r"^version: (?:\S+ \(build (\d+), commit (\S+)\)|(\d+) \((\S+)\))$",
                     ver.stdout + ver.stderr, re.M)
    assert said, ver.stdout + ver.stderr
    build, commit = (said[1], said[2]) if said[1] else (said[3], said[4])
    for res in jobs:
        assert res["server"]["build_info"] == f"b{build}-{commit}", (res["server"]["build_info"], said[0])
    assert jobs[0]["load"]["added_request_fields"].get("timings_per_token") is True
    assert jobs[0]["workload"]["context"]["per_slot_tokens"] == 16384 // 4  # {ctx_size} given: known
    # One server for both jobs, stopped when the sweep ended.
    assert jobs[0]["server"]["pid"] == jobs[1]["server"]["pid"]
    pid = jobs[0]["server"]["pid"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
