"""A streaming chat server whose timing is known exactly, for checking the client's timers.

It speaks llama.cpp's SSE dialect (a role-only first chunk, content events, a finish chunk, a
usage chunk, [DONE]) and logs when it really handed each token event to the kernel
(`perf_counter_ns`, CLOCK_MONOTONIC: the same clock in every process on the machine).
The request body chooses the timing: `ttft_ms` before the first token, `itl_ms` between tokens,
`max_tokens` tokens; `rid` names the request in the log. As llama.cpp does on multi-byte text,
`tokens_per_event: [2, 3, 1]` (cycled) packs several tokens into one event: an event is written
once its last token is "generated", so an event of k tokens comes k * itl_ms after the one
before (the first after ttft_ms + (k - 1) * itl_ms). `timings_per_token: true` adds llama.cpp's
cumulative `timings.predicted_n` to every content event; `eos: true` adds one more token that
shows no text (an EOS, counted in usage, arriving itl_ms after the last event); `close: true`
answers `Connection: close` as llama.cpp's server does after a stream.
GET /log returns {rid: [send_ns of each token event]}; POST /log/clear empties it.

Run in its own process so its work never shares the measured client's event loop:
  python tests/support/timedserver.py PORT      (prints "ready" when listening)
A test fixture, not part of benchrun: tests/integration (test_timers.py and others) and
benchmarks/client_overhead.py start it with running()."""
from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from time import perf_counter_ns

from aiohttp import web

_ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}],
         "object": "chat.completion.chunk", "model": "timed"}


def _event(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def make_app() -> web.Application:
    log: dict[str, list[int]] = {}

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        n = int(body.get("max_tokens", 16))
        ttft, itl = float(body.get("ttft_ms", 20)) / 1e3, float(body.get("itl_ms", 10)) / 1e3
        pattern = [int(k) for k in body.get("tokens_per_event") or [1]]
        timings, eos = bool(body.get("timings_per_token")), bool(body.get("eos"))
        sent = log.setdefault(str(body.get("rid", len(log))), [])
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if body.get("close"):
            resp.force_close()
        await resp.prepare(request)
        await resp.write(_event(_ROLE))  # at once: a client that counts it as a token is caught
        done = i = 0
        while done < n:
            k = min(pattern[i % len(pattern)], n - done)
            await asyncio.sleep((ttft if i == 0 else itl) + (k - 1) * itl)
            done, i = done + k, i + 1
            ev = {"choices": [{"index": 0, "delta": {"content": "x" * k}, "finish_reason": None}],
                  "object": "chat.completion.chunk", "model": "timed"}
            if timings:  # llama.cpp's full per-chunk object, so the bytes per event are realistic
                ev["timings"] = {"cache_n": 0, "prompt_n": 8, "prompt_ms": 12.5, "prompt_per_token_ms": 1.5625,
                                 "prompt_per_second": 640.0, "predicted_n": done, "predicted_ms": done * 10.0,
                                 "predicted_per_token_ms": 10.0, "predicted_per_second": 100.0}
            data = _event(ev)
            # Stamped just before the write hands the bytes to the kernel: nothing can arrive
            # earlier, so a negative error always means the client mis-stamped.
            sent.append(perf_counter_ns())
            await resp.write(data)
        if eos:
            await asyncio.sleep(itl)
        total = n + eos
        await resp.write(_event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop" if eos else "length"}]}))
        await resp.write(_event({"choices": [], "usage": {"completion_tokens": total, "prompt_tokens": 8,
                                                          "total_tokens": total + 8},
                                 "timings": {"predicted_n": total}}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def get_log(request: web.Request) -> web.Response:
        return web.json_response(log)

    async def clear_log(request: web.Request) -> web.Response:
        log.clear()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/log", get_log)
    app.router.add_post("/log/clear", clear_log)
    return app


@contextlib.contextmanager
def running(port: int | None = None) -> Iterator[str]:
    """Start the server in a child process; yield its base URL; always stop it."""
    with child_server(__file__, port) as url:
        yield url


@contextlib.contextmanager
def child_server(script: str, port: int | None = None, *args: object) -> Iterator[str]:
    """`python SCRIPT PORT ARGS...` in a child process, until it prints "ready"; yields its
    base URL and always stops it (this server's and support/slotserver.py's)."""
    from benchrun.servers.base import free_port, stop_process

    port = port or free_port()
    # By path, not -m: the child needs no sys.path of ours (tests/ is on pytest's, not python's).
    proc = subprocess.Popen([sys.executable, script, str(port), *map(str, args)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{script} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 5.0)
        proc.stdout.close()


def fetch_log(url: str, clear: bool = True) -> dict[str, list[int]]:
    with urllib.request.urlopen(url + "/log") as resp:
        log = json.loads(resp.read())
    if clear:
        urllib.request.urlopen(urllib.request.Request(url + "/log/clear", data=b"", method="POST")).close()
    return log


async def _serve(port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    from benchrun.load.engine import run_loop

    try:
        run_loop(_serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
