"""Faults provoked for real: servers that cannot start inside a sweep, a server killed -9 or
frozen mid-run, a crash in the middle of writing result.json.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_faults.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest
from support import output_dir_of, survivors

from benchrun.results import read_result


def _gone(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _preset(d: Path, name: str, body: str) -> None:
    (d / "model").mkdir(parents=True, exist_ok=True)
    (d / "model" / f"{name}.yaml").write_text(f"defaults:\n  - base_model\nname: {name}\n{body}\n")


def test_missing_files_and_binaries_of_every_preset_stop_the_sweep_before_anything_runs(cli, tmp_path):
    """A sweep over presets whose model file or binary this machine lacks: one line naming every
    one of them, exit 2, no job run, no output dir."""
    extra = tmp_path / "extra_conf"
    _preset(extra, "missing_file", "path: /nonexistent/dir/model.gguf")
    _preset(extra, "no_binary", "tiny: tiny\nbackend: llama_server\nbinary: /nonexistent/bin/llama-server")
    _preset(extra, "no_command", "tiny: tiny\nbackend: command\ncommand: [/nonexistent/vllm, '{port}']")
    proc, cwd = cli("-m", "model=missing_file,no_binary,no_command,tiny", "concurrency=1,2",
                    f"hydra.searchpath=[file://{extra}]")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "3 missing prerequisite(s), nothing was run" in err, err
    for cause in ("model file not found for preset 'missing_file': /nonexistent/dir/model.gguf",
                  "llama-server binary not found: '/nonexistent/bin/llama-server'",
                  "model.command[0] not found: '/nonexistent/vllm'"):
        assert err.count(cause) == 1, (cause, err)  # once, though each preset has two jobs
    assert not (cwd / "outputs").exists()


@pytest.mark.slow
def test_start_failures_inside_a_sweep_are_data_and_the_sweep_goes_on(cli, tmp_path):
    extra = tmp_path / "extra_conf"
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    busy_port = squatter.getsockname()[1]
    # A flag only the server can judge: a llama-server that rejects it as the real one does.
    fake = tmp_path / "llama-server"
    fake.write_text('#!/bin/sh\necho "error: invalid argument: --sideways" >&2\nexit 2\n')
    fake.chmod(0o755)
    _preset(extra, "bad_flag", f"tiny: tiny\nbackend: llama_server\nbinary: {fake}\nextra_args: [--sideways]")
    _preset(extra, "port_taken", f"tiny: tiny\nport: {busy_port}")
    _preset(extra, "too_slow", "tiny: tiny\nstartup_timeout_s: 0.01")
    _preset(extra, "crashes", "tiny: tiny\nctx_size: 1")  # llama.cpp aborts on its first decode
    try:
        # context_check=false: `crashes` (ctx_size 1) must reach llama.cpp, not be refused up front.
        proc, _ = cli("-m", "model=bad_flag,port_taken,too_slow,crashes,tiny",
                      "workload.requests=2", "load.warmup_requests=0", "context_check=false",
                      f"hydra.searchpath=[file://{extra}]", env={"BENCHRUN_TEST_MARK": str(tmp_path)})
    finally:
        squatter.close()
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / output_dir_of(proc.stdout)
    res = {p.parent.name.split("_", 1)[1]: read_result(p) for p in out.glob("*/result.json")}
    expect = {
        "bad_flag_c1": "error: invalid argument: --sideways",  # from the server.log tail
        "too_slow_c1": "not healthy after 0.01s",
    }
    for job, cause in expect.items():
        assert res[job]["status"] == "failed", job
        assert cause in res[job]["error"], (job, res[job]["error"])
        assert f"{job}] failed" in proc.stdout
    assert "exited with code 2 during startup" in res["bad_flag_c1"]["error"]
    crash = res["crashes_c1"]["error"]
    assert "during startup" in crash and "fail" in crash.lower(), crash  # the abort's own line...
    assert "LWP" not in crash and "#1 " not in crash, crash  # ...not gdb's backtrace after it
    assert res["tiny_c1"]["status"] == "ok" and res["tiny_c1"]["metrics"]["requests_ok"] == 2
    # A pinned port that is busy before the start: the server moves to a free port (and says
    # so in server.log); the squatter is never benchmarked.
    moved = res["port_taken_c1"]
    assert moved["status"] == "ok", moved["error"]
    assert not moved["server"]["url"].endswith(f":{busy_port}")
    port_job = next(out.glob("*_port_taken_c1"))
    assert f"model.port={busy_port} is busy" in (port_job / "server.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["status"] for r in summary) == ["failed"] * 3 + ["ok"] * 2
    report = (out / "report.md").read_text()
    assert all(job in report for job in expect)  # the report lists the failed jobs
    # Every server started for the sweep (the timed-out one included) is stopped.
    assert all(_gone(r["server"]["pid"]) for r in res.values())
    assert survivors(str(tmp_path)) == []


@pytest.mark.slow
def test_port_taken_after_the_check_fails_the_start_with_the_cause(tmp_path, monkeypatch):
    """The race: the pinned port was free when checked and taken when the server binds."""
    import benchrun.servers.pool as pool
    from benchrun.config import ModelConfig
    from benchrun.servers import ServerError

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    monkeypatch.setattr(pool, "port_is_free", lambda host, p: True)
    try:
        with pytest.raises(ServerError) as e:
            pool.build_server(ModelConfig(name="tiny", tiny="tiny", port=port, startup_timeout_s=30),
                              tmp_path / "server.log")
    finally:
        squatter.close()
    msg = str(e.value)
    assert "during startup" in msg and "couldn't bind" in msg and str(port) in msg
    assert "\n" not in msg


def _job_cfg(compose, *extra):
    return compose(["model=tiny", "concurrency=2", "load.warmup_requests=0", "telemetry.enabled=false",
                    "fit_check=false", *extra])


def _after_measured(monkeypatch, n: int, action) -> None:
    """Run `action()` as soon as n measured requests have finished on the wire: a real
    mid-run moment, on the engine's own loop, with other requests still in flight."""
    from benchrun.load import engine

    done = []

    def counted(fn):
        async def wrapper(session, url, body, rec, *args, **kw):
            out = await fn(session, url, body, rec, *args, **kw)
            if not rec.warmup and rec.error is None:
                done.append(rec)
                if len(done) == n:
                    action()
            return out
        return wrapper

    monkeypatch.setattr(engine, "fetch", counted(engine.fetch))


@pytest.mark.slow
def test_server_killed_mid_run_fails_the_job_keeps_partial_metrics_next_job_fresh(compose, tmp_path, monkeypatch):
    from benchrun.job import run_job
    from benchrun.load.records import read_records
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        cfg = _job_cfg(compose, "workload.requests=12", "workload.output_tokens=32",
                       "load.request_timeout_s=5")
        job_dir = tmp_path / "0_tiny_c2"
        killed = {}

        def kill():
            killed["pid"], killed["ns"] = pool.current.pid, time.perf_counter_ns()  # the records' clock
            os.kill(pool.current.pid, signal.SIGKILL)

        _after_measured(monkeypatch, 3, kill)
        res = run_job(cfg, job_dir, pool, job_num=0, run_id="t")
        assert killed, "the server was never killed"
        assert res["status"] == "failed"
        assert "server process died during the run (exit code -9)" in res["error"]
        m = res["metrics"]
        assert m["requests_ok"] >= 3 and m["requests_failed"] >= 1  # finished ones kept
        assert m["requests_ok"] + m["requests_failed"] <= 12
        recs = [r for r in read_records(job_dir / "requests.jsonl") if not r.warmup]
        assert sum(r.ok for r in recs) == m["requests_ok"]
        # In-flight and later requests failed fast, on the dead connection or the refused one:
        # none waited for the 5 s read timeout, and each ended before that timeout could have
        # fired. (Timed on each request itself: how long run_job then takes to write its
        # results on a busy machine is no part of it.)
        failed = [r for r in recs if not r.ok]
        assert failed and not any("timeout" in (r.error or "") for r in failed), [r.error for r in failed]
        assert all(r.end_ns - killed["ns"] < 5e9 for r in failed), [(r.end_ns - killed["ns"]) / 1e9 for r in failed]
        assert read_result(job_dir / "result.json")["status"] == "failed"
        assert pool.current is None  # discarded

        res2 = run_job(_job_cfg(compose, "workload.requests=2"), tmp_path / "1_tiny_c2", pool,
                       job_num=1, run_id="t")
        assert res2["status"] == "ok", res2["error"]
        assert res2["server"]["reused"] is False and res2["server"]["pid"] != killed["pid"]
    finally:
        pool.close()


@pytest.mark.slow
def test_frozen_server_requests_time_out_job_fails_server_replaced(compose, tmp_path, monkeypatch):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    pool = ServerPool()
    try:
        cfg = _job_cfg(compose, "workload.requests=6", "workload.output_tokens=48",
                       "load.request_timeout_s=1")
        job_dir = tmp_path / "0_tiny_c2"
        frozen = {}

        def freeze():  # the server hangs: alive, accepting connections, sending nothing
            frozen["pid"] = pool.current.pid
            os.kill(pool.current.pid, signal.SIGSTOP)

        _after_measured(monkeypatch, 2, freeze)
        res = run_job(cfg, job_dir, pool, job_num=0, run_id="t")
        assert frozen
        assert res["status"] == "failed"
        assert "stopped responding" in res["error"]
        assert res["metrics"]["requests_ok"] >= 2
        errors = [json.loads(ln).get("error") or "" for ln in (job_dir / "requests.jsonl").read_text().splitlines()]
        assert any("read timeout" in e for e in errors), errors
        assert _gone(frozen["pid"])  # the frozen server was stopped (SIGCONT + SIGTERM/KILL)
        assert pool.current is None
    finally:
        pool.close()


class _StrictOpenAI:
    """A minimal OpenAI-compatible server, as many are: no /health (404), and every request
    must name its model. Serves from a thread of this process; yields its URL."""

    def __init__(self, model: str):
        import http.server
        import threading

        seen = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(404)
                self.end_headers()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":  # e.g. llama.cpp's /tokenize
                    self.send_response(404)
                    self.end_headers()
                    return
                seen.append(body)
                if body.get("model") != model:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b'{"error": "model is required"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                n = body["max_tokens"]
                chunks = [{"choices": [{"delta": {"content": "x"}}]}] * n + [
                    {"choices": [], "usage": {"completion_tokens": n, "prompt_tokens": 5}}]
                for c in chunks:
                    self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_external_server_without_health_that_requires_the_model_name(compose, tmp_path):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    srv = _StrictOpenAI("org/served-model")
    pool = ServerPool()
    try:
        cfg = compose(["model=external", f"model.url={srv.url}", "model.served_name=org/served-model",
                       "workload.requests=3", "workload.output_tokens=4", "load.warmup_requests=1",
                       "telemetry.enabled=false", "load.metrics_interval_s=0"])
        res = run_job(cfg, tmp_path / "0_external_c1", pool, job_num=0, run_id="t")
        no_name = run_job(compose(["model=external", f"model.url={srv.url}", "workload.requests=1",
                                   "load.warmup_requests=0", "telemetry.enabled=false"]),
                          tmp_path / "1_external_c1", pool, job_num=1, run_id="t")
    finally:
        pool.close()
        srv.close()
    assert res["status"] == "ok", res["error"]  # a 404 on /health is an answer, before and after
    assert res["metrics"]["requests_ok"] == 3
    assert srv.bodies[0]["model"] == "org/served-model"
    assert srv.bodies[-1]["model"] == "external"  # no served_name: the preset name is sent
    assert no_name["metrics"]["requests_failed"] == 1


@pytest.mark.slow
def test_a_failure_unrelated_to_the_server_keeps_it_for_the_next_job(compose, tmp_path, monkeypatch):
    from benchrun.job import run_job
    from benchrun.servers import ServerPool
    from benchrun.workloads.synthetic import SyntheticWorkload

    pool = ServerPool()
    try:
        first = run_job(_job_cfg(compose, "workload.requests=1"), tmp_path / "0_tiny_c2", pool, 0, "t")
        assert first["status"] == "ok", first["error"]
        pid = pool.current.pid
        bad_path = run_job(_job_cfg(compose, "workload=replay", "workload.path=/nonexistent/t.jsonl"),
                           tmp_path / "1_tiny_c2", pool, 1, "t")
        assert bad_path["status"] == "failed" and "no such file" in bad_path["error"]
        assert pool.current is not None and pool.current.pid == pid

        def broken_check(self, records):
            raise RuntimeError("a check crashed after measuring")

        monkeypatch.setattr(SyntheticWorkload, "evaluate", broken_check)
        late = run_job(_job_cfg(compose, "workload.requests=1"), tmp_path / "2_tiny_c2", pool, 2, "t")
        assert late["status"] == "failed" and "a check crashed" in late["error"]
        assert late["server"]["reused"] is True and late["metrics"]["requests_ok"] == 1
        assert pool.current is not None and pool.current.pid == pid  # no needless relaunch
    finally:
        pool.close()
