"""Bad responses from a local aiohttp server (exact, known misbehaviour): malformed SSE,
invalid JSON, 503 while loading, a stall, no [DONE], an empty body, a wrong-shaped event.
Each becomes a per-request error with a reason; the engine never crashes."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web
from support import serve_app

from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan

CLOSING = web.AppKey("closing", asyncio.Event)
OK_EVENT = {"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]}


async def chat(request: web.Request) -> web.StreamResponse:
    mode = (await request.json())["messages"][0]["content"]
    if mode == "503":
        return web.json_response({"error": {"code": 503, "message": "Loading model"}}, status=503)
    if mode == "500":
        return web.Response(status=500, text="boom")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)

    async def event(obj) -> None:
        await resp.write(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")

    if mode == "ok":
        await event(OK_EVENT)
        await event(b"[DONE]")
    elif mode == "malformed":
        await event(OK_EVENT)
        await event(b'{"choices": [{"delta": {"content": "x"')  # cut JSON
        await event(b"[DONE]")
    elif mode == "wrong_shape":
        await event({"choices": ["not a dict"]})
        await event(b"[DONE]")
    elif mode == "no_done":
        await event(OK_EVENT)
    elif mode == "stall":
        await event(OK_EVENT)
        try:  # stops sending, keeps the connection open (until the test shuts down)
            await asyncio.wait_for(request.app[CLOSING].wait(), 30)
        except asyncio.TimeoutError:
            pass
    elif mode == "empty":
        pass
    elif mode == "garbage":
        await resp.write(b"\xff\xfe not sse at all \x00\n\n")
    await resp.write_eof()
    return resp


def conv(mode: str):
    yield RequestSpec(messages=[{"role": "user", "content": mode}], max_tokens=4)


EXPECT = {
    "ok": None,
    "503": "HTTP 503",
    "500": "HTTP 500: boom",
    "malformed": "malformed SSE event",
    "wrong_shape": "unexpected SSE event",
    "no_done": "stream ended without [DONE]",
    "stall": "read timeout",
    "empty": "empty response body",
    "garbage": "stream ended without [DONE]",  # not one SSE event in it
}


def test_bad_responses_are_per_request_errors_never_a_crash():
    async def go():
        app = web.Application()
        app[CLOSING] = asyncio.Event()
        app.router.add_post("/v1/chat/completions", chat)
        async with serve_app(app) as url, make_session(0.8) as session:
            try:
                engine = Engine(session, url + "/v1/chat/completions")
                return await engine.run([conv(m) for m in EXPECT], LoadPlan(concurrency=len(EXPECT)))
            finally:
                app[CLOSING].set()

    recs, wall_ns = asyncio.run(asyncio.wait_for(go(), 20))
    assert len(recs) == len(EXPECT)
    by_mode = {r.id: r for r in recs}
    for i, (mode, reason) in enumerate(EXPECT.items()):
        r = by_mode[i]
        if reason is None:
            assert r.ok and r.text == "hi" and r.done, (mode, r.error)
        else:
            assert not r.ok and r.error, mode
            assert reason in r.error, (mode, r.error)
    assert by_mode[list(EXPECT).index("503")].status == 503
    assert wall_ns / 1e9 < 10  # the stall ended at the read timeout, not the server's 30 s
