"""A streaming chat server whose timing is known exactly, for checking the client's timers.

It speaks llama.cpp's SSE dialect (a role-only first chunk, one content token per event,
a finish chunk, a usage chunk, [DONE]) and logs when it really handed each token event to the
kernel (`perf_counter_ns`, CLOCK_MONOTONIC: the same clock in every process on the machine).
The request body chooses the timing: `ttft_ms` before the first token, `itl_ms` between tokens,
`max_tokens` tokens; `rid` names the request in the log. GET /log returns
{rid: [send_ns of each token]}; POST /log/clear empties it.

Run in its own process so its work never shares the measured client's event loop:
  python -m benchrun.timedserver PORT      (prints "ready" when listening)"""
from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.request
from typing import Iterator
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
        sent = log.setdefault(str(body.get("rid", len(log))), [])
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_event(_ROLE))  # at once: a client that counts it as a token is caught
        await asyncio.sleep(ttft)
        for i in range(n):
            if i:
                await asyncio.sleep(itl)
            data = _event({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
                           "object": "chat.completion.chunk", "model": "timed"})
            # Stamped just before the write hands the bytes to the kernel: nothing can arrive
            # earlier, so a negative error always means the client mis-stamped.
            sent.append(perf_counter_ns())
            await resp.write(data)
        await resp.write(_event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}))
        await resp.write(_event({"choices": [], "usage": {"completion_tokens": n, "prompt_tokens": 8,
                                                          "total_tokens": n + 8}}))
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
    from .servers.base import free_port, stop_process

    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchrun.timedserver", str(port)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the timed server did not start")
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
    from .engine import run_loop

    try:
        run_loop(_serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
