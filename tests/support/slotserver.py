"""A streaming chat server whose capacity is known exactly, for the capacity search's tests.

It serves like llama-server's slots, by a rule simple enough to compute the answer by hand:
`slots` requests are served at once, the rest wait in a FIFO queue (llama.cpp's requests beyond
`--parallel`). A served request with `a` requests in its slots (itself included) prefills for
`ttft_ms * (1 + ttft_slope * (a - 1))`, then streams `max_tokens` tokens, each taking
`itl_ms * (1 + itl_slope * (a - 1))` with `a` counted again per token. So a closed loop at
concurrency c <= slots sees TTFT and TPOT rise with c, beyond `slots` only queueing: throughput
stops rising while TTFT climbs. It speaks llama.cpp's SSE dialect (role chunk, content events,
finish, usage, `timings` with prompt_ms = the prefill alone, so queue_ms is the wait) and
answers GET /health.

  python tests/support/slotserver.py PORT SLOTS TTFT_MS TTFT_SLOPE ITL_MS ITL_SLOPE   (prints "ready")
A test fixture, not part of benchrun: tests/integration/test_capacity.py starts it with running()."""
from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from time import perf_counter_ns

from aiohttp import web


def _event(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict, finish=None) -> bytes:
    return _event({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                   "object": "chat.completion.chunk", "model": "slots"})


def make_app(slots: int, ttft_ms: float, ttft_slope: float, itl_ms: float, itl_slope: float) -> web.Application:
    gate = asyncio.Semaphore(slots)  # FIFO: waiters get a slot in arrival order
    active = [0]

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        n = int(body.get("max_tokens") or 16)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        async with gate:
            active[0] += 1
            try:
                t0 = perf_counter_ns()
                await asyncio.sleep(ttft_ms * (1 + ttft_slope * (active[0] - 1)) / 1e3)
                prompt_ms = (perf_counter_ns() - t0) / 1e6
                await resp.write(_chunk({"role": "assistant", "content": None}))
                t1 = perf_counter_ns()
                for i in range(n):
                    if i:
                        await asyncio.sleep(itl_ms * (1 + itl_slope * (active[0] - 1)) / 1e3)
                    await resp.write(_chunk({"content": "x"}))
                predicted_ms = (perf_counter_ns() - t1) / 1e6
            finally:
                active[0] -= 1
        await resp.write(_chunk({}, "length"))
        await resp.write(_event({"choices": [], "usage": {"completion_tokens": n, "prompt_tokens": 8, "total_tokens": n + 8},
                                 "timings": {"cache_n": 0, "prompt_n": 8, "prompt_ms": prompt_ms,
                                             "predicted_n": n, "predicted_ms": predicted_ms}}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app


@contextlib.contextmanager
def running(slots: int, ttft_ms: float, ttft_slope: float, itl_ms: float, itl_slope: float) -> Iterator[str]:
    """Start the server in a child process; yield its base URL; always stop it."""
    from support.timedserver import child_server

    with child_server(__file__, None, slots, ttft_ms, ttft_slope, itl_ms, itl_slope) as url:
        yield url


async def _serve(port: int, *params: float) -> None:
    runner = web.AppRunner(make_app(int(params[0]), *params[1:]), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_serve(int(sys.argv[1]), *map(float, sys.argv[2:7])))
    except KeyboardInterrupt:
        pass
