"""Servers bind loopback; an API key comes only from the env var the preset names and never
appears in anything benchrun writes (checked by grepping the whole output dir).
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_security.py."""
from __future__ import annotations

import asyncio
import json
import secrets
import threading

import psutil
from aiohttp import web
from support import output_dir_of

SEEN_KEYS = web.AppKey("seen", list)


def test_embedded_server_listens_on_loopback_only(tiny_server):
    listening = [c.laddr for c in psutil.Process(tiny_server.pid).net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(a.ip == "127.0.0.1" for a in listening)
    assert tiny_server.url.startswith("http://127.0.0.1:")


class LeakyServer:
    """An OpenAI-compatible endpoint that demands the key and then leaks it everywhere it
    can: in /props build_info, in streamed content, in error bodies."""

    def __init__(self, key: str):
        self.key = key
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _authorized(self, request) -> bool:
        got = request.headers.get("Authorization", "")
        request.app[SEEN_KEYS].append(got)
        return got == f"Bearer {self.key}"

    async def health(self, request):
        return web.json_response({"status": "ok"})

    async def props(self, request):
        return web.json_response({"build_info": f"leaky build, key={self.key}"})

    async def chat(self, request):
        if not self._authorized(request):
            return web.json_response({"error": {"message": f"bad key, expected {self.key}"}}, status=401)
        n = (await request.json())["max_tokens"]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ["your key is ", self.key] + ["."] * max(0, n - 2):  # one token per event
            ev = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(ev)}\n\n".encode())
        ev = {"choices": [{"delta": {}, "finish_reason": "length"}],
              "usage": {"prompt_tokens": 10, "completion_tokens": max(n, 2), "total_tokens": 10 + max(n, 2)}}
        await resp.write(f"data: {json.dumps(ev)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _run(self):
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app[SEEN_KEYS] = []
        self.app = app
        app.router.add_get("/health", self.health)
        app.router.add_get("/props", self.props)
        app.router.add_post("/v1/chat/completions", self.chat)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def test_api_key_is_used_but_never_written(cli, tmp_path):
    key = "sk-test-" + secrets.token_hex(12)
    with LeakyServer(key) as srv:
        proc, _ = cli("model=external", f"model.url=http://127.0.0.1:{srv.port}",
                      "model.api_key_env=BENCH_TEST_API_KEY", "workload.requests=2",
                      "load.warmup_requests=0", env={"BENCH_TEST_API_KEY": key})
        seen = list(srv.app[SEEN_KEYS])
    assert proc.returncode == 0, proc.stderr
    assert seen and all(s == f"Bearer {key}" for s in seen)  # the key was sent
    out = tmp_path / output_dir_of(proc.stdout)
    res = json.loads(next(out.glob("*/result.json")).read_text())
    assert res["status"] == "ok" and res["metrics"]["requests_ok"] == 2
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "requests.jsonl" for p in files) and any(p.parts[-2] == ".hydra" for p in files)
    leaks = [str(p) for p in files if key.encode() in p.read_bytes()]
    assert leaks == []
    assert "***REDACTED***" in (next(out.glob("*/requests.jsonl"))).read_text()  # it was echoed
    assert key not in proc.stdout + proc.stderr


def test_missing_api_key_env_is_a_failed_job_naming_the_variable(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_TEST_NO_SUCH_KEY", raising=False)
    with LeakyServer("unused") as srv:
        proc, _ = cli("model=external", f"model.url=http://127.0.0.1:{srv.port}",
                      "model.api_key_env=BENCH_TEST_NO_SUCH_KEY", "workload.requests=1")
    assert proc.returncode == 0
    assert "model.api_key_env names BENCH_TEST_NO_SUCH_KEY, but that variable is not set" in proc.stdout


class HostileServer(LeakyServer):
    """Answers every chat turn with the same hostile Python: at import (so also when the pytest
    check collects it) it signals its parent and everyone, fills the disk, bombs memory and
    deletes the outputs dir and a canary in the real home."""

    def __init__(self, code: str):
        super().__init__("unused")
        self.code = code

    async def chat(self, request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in ["```python\n", self.code, "\n```"]:
            ev = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(ev)}\n\n".encode())
        ev = {"choices": [{"delta": {}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}
        await resp.write(f"data: {json.dumps(ev)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def test_hostile_generated_code_harms_nothing_and_the_job_still_writes_its_result(cli, tmp_path):
    from pathlib import Path

    from benchrun.checks.sandbox import CONTAINED, isolation

    iso = isolation()  # raises (fails the test) when nothing here can contain it: never run this unconfined
    assert iso in CONTAINED
    canary = Path.home() / f".benchrun-canary-{secrets.token_hex(6)}"
    canary.write_text("still here")
    canary.chmod(0o666)
    outputs = tmp_path / "outputs"
    code = f"""import os, shutil, signal
for target in ({str(outputs)!r}, {str(canary)!r}):
    try:
        shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    except Exception:
        pass
for pid in (os.getppid(), 1, -1):
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except Exception:
            pass
try:
    with open("fill", "wb") as fh:
        while True:
            fh.write(b"x" * (1 << 20))
except Exception:
    pass
hog = []
try:
    while True:
        hog.append(bytearray(64 << 20))
except MemoryError:
    pass

def test_fine():
    assert True"""
    try:
        with HostileServer(code) as srv:
            proc, _ = cli("model=external", f"model.url=http://127.0.0.1:{srv.port}", "workload=agentic_coding",
                          "concurrency=3", "load.warmup_requests=0", timeout=240)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        res = json.loads(next((tmp_path / output_dir_of(proc.stdout)).glob("*/result.json")).read_text())
        assert res["status"] == "ok" and res["metrics"]["requests_ok"] == 5
        s2 = next(t for t in res["tasks"] if t["agent"] == "S2")
        pytest_check = next(c for c in s2["checks"] if c["name"] == "pytest_passes")
        assert s2["isolation"] == iso and pytest_check["passed"] is False  # it killed its own pytest
        assert canary.read_text() == "still here"
    finally:
        canary.unlink(missing_ok=True)
