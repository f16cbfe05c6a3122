"""The `command` backend: any OpenAI-compatible server from the user's own argv template, here
the real llama-server (CI builds it), launched, health-checked on model.health_path, measured
and stopped like the built-in backends; a bad template is one line before anything runs."""
from __future__ import annotations

import json

import psutil
import pytest

from benchrun.config import ModelConfig
from benchrun.servers.registry import backend_for
from conftest import output_dir_of
from test_llama_server_real import llama_server_bin  # noqa: F401 -- the session fixture


def test_the_template_is_filled_per_argument_and_nothing_else_is_special(tmp_path):
    m = ModelConfig(name="p", backend="command", ctx_size=2048, parallel=3, threads=2,
                    command=["srv", "--model={model}", "-p", "{port}", "--cfg", '{"a": {"b": 1}}', "{nope}"])
    b = backend_for("command")
    assert b.command(m, tmp_path / "m.gguf", 8123) == [
        "srv", f"--model={tmp_path / 'm.gguf'}", "-p", "8123", "--cfg", '{"a": {"b": 1}}', "{nope}"]
    assert b.needs_model_file(m) and not b.sets_context(m)  # no {ctx_size}: the server decides
    assert not b.needs_model_file(ModelConfig(name="p", backend="command", command=["srv", "{port}"]))


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
                     "'{ctx_size}'", "-np", "'{parallel}'", "--threads", "1", "--metrics"])
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
    assert cmd[cmd.index("-c") + 1] == "4096" and cmd[cmd.index("--port") + 1].isdigit()
    # Its /props named a llama.cpp build, so it is measured as one: per-chunk token counts asked.
    assert "b" in (jobs[0]["server"]["build_info"] or "")
    assert jobs[0]["load"]["added_request_fields"].get("timings_per_token") is True
    assert jobs[0]["workload"]["context"]["per_slot_tokens"] == 4096 // 4  # {ctx_size} given: known
    # One server for both jobs, stopped when the sweep ended.
    assert jobs[0]["server"]["pid"] == jobs[1]["server"]["pid"]
    pid = jobs[0]["server"]["pid"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_result_schema_names_every_registered_backend():
    from importlib import resources

    from benchrun.servers.registry import BACKENDS

    schema = json.loads(resources.files("benchrun").joinpath("schemas/result.schema.json").read_text())
    assert set(schema["properties"]["server"]["properties"]["backend"]["enum"]) == set(BACKENDS)
