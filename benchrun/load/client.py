"""One streaming chat request -> one RequestRecord.

The hot loop does nothing but stamp and keep raw chunks (`perf_counter_ns` + list append);
SSE decoding and JSON parsing happen after the stream has ended. Connection setup is timed by
aiohttp trace callbacks, which fire before the request is written, never per chunk.

Per-chunk token counts: llama.cpp's `timings_per_token: true` puts the cumulative
`timings.predicted_n` in every chunk, OpenAI-style servers list one `logprobs.content` entry per
token when asked for logprobs. parse_stream turns either into `event_tokens` (tokens each event
carried, in decode.py); metrics.py turns those into per-token ITL."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Optional

import aiohttp

from benchrun.config import REUSE_CONNECTIONS, one_of
from benchrun.load.decode import parse_stream
from benchrun.load.records import (
    RequestRecord,
)


@dataclass
class RequestSpec:
    """What to send: the chat messages and the request body fields beside them."""

    messages: list
    max_tokens: int
    body: dict = field(default_factory=dict)  # temperature, seed, ignore_eos, cache_prompt, ...
    tags: dict = field(default_factory=dict)
    expected_tokens: Optional[int] = None
    # False: the conversation never reads this reply, so the engine may decode it after the
    # run instead of while other streams are live (less jitter in their timestamps).
    reply_needed: bool = True


def build_body(spec: RequestSpec, model: str | None = None, extra: dict | None = None) -> bytes:
    """The JSON body. `extra` (e.g. token_count_body) goes under the spec's own fields, so a
    workload's explicit setting wins."""
    body: dict[str, Any] = {
        "messages": spec.messages,
        "max_tokens": spec.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **(extra or {}),
        **spec.body,
    }
    if model:
        body.setdefault("model", model)
    return json.dumps(body).encode()


# Token-count request fields per `load.token_counts` mode (see token_count_body).
_COUNT_FIELDS = {"timings": {"timings_per_token": True}, "logprobs": {"logprobs": True}, "off": {}}


def token_count_body(mode: str, llama_cpp: bool) -> dict:
    """Request fields that make the server say how many tokens each chunk carries.
    `auto`: llama.cpp's `timings_per_token` when the server is llama.cpp (benchrun launched it,
    or an external one reported a build in /props); nothing for other servers, since a strict
    OpenAI-compatible API may reject unknown fields and logprobs cost the server work."""
    if mode == "auto":
        mode = "timings" if llama_cpp else "off"
    if mode not in _COUNT_FIELDS:
        raise ValueError(f"load.token_counts must be auto, timings, logprobs or off, got {mode!r}")
    return dict(_COUNT_FIELDS[mode])


def _trace_config() -> aiohttp.TraceConfig:
    """Stamps connection setup per request. The callbacks run while aiohttp acquires a
    connection, before the request is written: nothing is added to the per-chunk loop.
    The record travels as `trace_request_ctx`."""
    tc = aiohttp.TraceConfig()

    async def create_start(session, ctx, params) -> None:
        ctx.t0 = perf_counter_ns()

    async def create_end(session, ctx, params) -> None:
        rec = ctx.trace_request_ctx
        if rec is not None:
            rec.connection, rec.connect_ns = "new", perf_counter_ns() - ctx.t0

    async def reuse(session, ctx, params) -> None:
        rec = ctx.trace_request_ctx
        if rec is not None:
            rec.connection, rec.connect_ns = "reused", 0

    tc.on_connection_create_start.append(create_start)
    tc.on_connection_create_end.append(create_end)
    tc.on_connection_reuseconn.append(reuse)
    return tc


def reuse_for(setting: str, llama_cpp: bool) -> bool:
    """`load.reuse_connections` -> pool or not. auto: not for llama.cpp, whose server answers
    keep-alive but closes the connection after every streamed reply (a pooled request would
    find it closed and have to be resent); yes for other servers, which over a network would
    otherwise pay a TCP (and TLS) handshake per request."""
    one_of("load.reuse_connections", setting, REUSE_CONNECTIONS)
    return setting == "always" or (setting == "auto" and not llama_cpp)


def make_session(read_timeout_s: float, headers: dict | None = None,
                 reuse_connections: bool = False) -> aiohttp.ClientSession:
    """One session for the whole job. No connection limit (aiohttp's default 100 queues
    silently), no total timeout (long generations are legal), a per-read stall timeout.
    reuse_connections: keep-alive pooling (see reuse_for); a server that answers
    `Connection: close` still gets a fresh connection each time, and a pooled connection the
    server closed under us is detected and the request resent once (fetch).
    False: a fresh connection for every request (force_close), safe with any server."""
    connector = aiohttp.TCPConnector(limit=0, force_close=not reuse_connections,
                                     enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                 skip_auto_headers=("User-Agent",), trace_configs=[_trace_config()])


_JSON = {"Content-Type": "application/json"}


class StallWatch:
    """One periodic check for every request in flight, instead of aiohttp's per-read timer
    (a timer cancelled and re-armed on every chunk: measurable CPU at high token rates).
    A request silent for `stall_s` is cancelled and recorded as a read timeout."""

    def __init__(self, stall_s: float):
        self.stall_s = stall_s
        self.live: dict[int, tuple[RequestRecord, list, asyncio.Task]] = {}
        self.stalled: set[int] = set()

    async def run(self) -> None:
        period = min(1.0, self.stall_s / 4)
        limit = int(self.stall_s * 1e9)
        while True:
            await asyncio.sleep(period)
            now = perf_counter_ns()
            for key, (rec, chunks, task) in list(self.live.items()):
                if now - (chunks[-1][0] if chunks else rec.start_ns) > limit:
                    self.stalled.add(key)
                    task.cancel()


async def fetch(session: aiohttp.ClientSession, url: str, body: bytes, rec: RequestRecord,
                watch: StallWatch | None = None) -> list[tuple[int, bytes]]:
    """The hot path: send, then stamp and keep each raw chunk; nothing else. Fills the
    record's status, times, connection and transport errors; returns the body chunks for
    parse_stream. With a StallWatch, aiohttp's per-read timeout is switched off for this request.
    A request whose *reused* connection turns out closed before any response arrived (the server
    dropped an idle keep-alive connection) is sent once more on a new connection; start_ns stays
    the first attempt's, so the lost time counts in its latency."""
    chunks: list[tuple[int, bytes]] = []
    kw: dict = {"trace_request_ctx": rec}
    if watch is not None:
        kw["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=session.timeout.sock_connect)
        key = id(rec)
        watch.live[key] = (rec, chunks, asyncio.current_task())
    rec.start_ns = perf_counter_ns()
    try:
        for attempt in (0, 1):
            try:
                await _stream(session, url, body, rec, chunks, kw)
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt or rec.connection != "reused" or rec.status is not None or chunks:
                    raise
                rec.retried = True
    except asyncio.CancelledError:
        if watch is None or key not in watch.stalled:
            raise
        watch.stalled.discard(key)
        task = asyncio.current_task()
        if hasattr(task, "uncancel"):
            task.uncancel()  # the cancel was ours and is handled: the task goes on
        rec.error = "read timeout: the server stopped sending"
    except aiohttp.ConnectionTimeoutError:
        rec.error = "connect timeout: the server did not accept the connection"
    except asyncio.TimeoutError:
        rec.error = "read timeout: the server stopped sending"
    except aiohttp.ClientError as e:
        rec.error = f"{type(e).__name__}: {e}"
    except (OSError, ValueError, RuntimeError) as e:  # resets, bad headers: data, not a crash
        rec.error = f"{type(e).__name__}: {e}"
    finally:
        if watch is not None:
            watch.live.pop(key, None)
    rec.end_ns = perf_counter_ns()
    return chunks


async def _stream(session: aiohttp.ClientSession, url: str, body: bytes, rec: RequestRecord,
                  chunks: list, kw: dict) -> None:
    append = chunks.append
    async with session.post(url, data=body, headers=_JSON, **kw) as resp:
        rec.status = resp.status
        if resp.status != 200:
            text = (await resp.read())[:1000].decode("utf-8", "replace")
            rec.error = f"HTTP {resp.status}: {text.strip()}"
        else:
            async for chunk in resp.content.iter_any():
                append((perf_counter_ns(), chunk))


async def send(session: aiohttp.ClientSession, url: str, body: bytes, rec: RequestRecord,
               watch: StallWatch | None = None) -> RequestRecord:
    """Send one streaming request and fill `rec`. Never raises for network or HTTP trouble:
    failures are data (rec.error)."""
    parse_stream(rec, await fetch(session, url, body, rec, watch))
    return rec
