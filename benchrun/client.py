"""One streaming chat request -> one RequestRecord.

The hot loop does nothing but stamp and keep raw chunks (`perf_counter_ns` + list append);
SSE decoding and JSON parsing happen after the stream has ended."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Optional

import aiohttp

from .records import (CONTENT, DONE, ERROR, FINISH, OTHER, REASONING, ROLE, USAGE,
                      RequestRecord)
from .sse import iter_events


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


def build_body(spec: RequestSpec, model: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "messages": spec.messages,
        "max_tokens": spec.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **spec.body,
    }
    if model:
        body.setdefault("model", model)
    return json.dumps(body).encode()


def make_session(read_timeout_s: float, headers: dict | None = None) -> aiohttp.ClientSession:
    """One session for the whole job. No connection limit (aiohttp's default 100 queues
    silently), no total timeout (long generations are legal), a per-read stall timeout.
    force_close: llama.cpp's server may close a kept-alive connection after a stream, and a
    pooled client then loses the next request; a fresh loopback connection costs ~0.1 ms."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                 skip_auto_headers=("User-Agent",))


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
    record's status, times and transport errors; returns the body chunks for parse_stream.
    With a StallWatch, aiohttp's per-read timeout is switched off for this request."""
    chunks: list[tuple[int, bytes]] = []
    append = chunks.append
    kw = {}
    if watch is not None:
        kw["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=session.timeout.sock_connect)
        key = id(rec)
        watch.live[key] = (rec, chunks, asyncio.current_task())
    rec.start_ns = perf_counter_ns()
    try:
        async with session.post(url, data=body, headers=_JSON, **kw) as resp:
            rec.status = resp.status
            if resp.status != 200:
                text = (await resp.read())[:500].decode("utf-8", "replace")
                rec.error = f"HTTP {resp.status}: {text.strip()}"
            else:
                async for chunk in resp.content.iter_any():
                    append((perf_counter_ns(), chunk))
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


async def send(session: aiohttp.ClientSession, url: str, body: bytes, rec: RequestRecord,
               watch: StallWatch | None = None) -> RequestRecord:
    """Send one streaming request and fill `rec`. Never raises for network or HTTP trouble:
    failures are data (rec.error)."""
    parse_stream(rec, await fetch(session, url, body, rec, watch))
    return rec


def parse_stream(rec: RequestRecord, chunks: list[tuple[int, bytes]]) -> None:
    """Decode the stamped chunks into the record's events, text, usage and timings."""
    start = rec.start_ns
    kinds: list[str] = []
    text: list[str] = []
    reasoning: list[str] = []
    for ns, data in iter_events(chunks):
        rec.event_ns.append(ns - start)
        if data == "[DONE]":
            rec.done = True
            kinds.append(DONE)
            continue
        if not data:  # an empty `data:` line: a keep-alive some proxies send
            kinds.append(OTHER)
            continue
        try:
            ev = json.loads(data)
        except ValueError:
            kinds.append(ERROR)
            rec.error = rec.error or f"malformed SSE event: {data[:120]!r}"
            continue
        try:
            kinds.append(_classify(ev, rec, text, reasoning))
        except (AttributeError, TypeError, IndexError, KeyError):  # valid JSON, wrong shape
            kinds.append(ERROR)
            rec.error = rec.error or f"unexpected SSE event: {data[:120]!r}"
    rec.event_kinds = "".join(kinds)
    rec.text = "".join(text)
    rec.reasoning = "".join(reasoning)
    if rec.error is None and rec.status == 200 and not rec.done:
        rec.error = "stream ended without [DONE]" if chunks else "empty response body"


def _classify(ev: Any, rec: RequestRecord, text: list, reasoning: list) -> str:
    if not isinstance(ev, dict):
        return OTHER
    if ev.get("error") is not None:  # some servers send "error": null on every chunk
        err = ev["error"]
        rec.error = rec.error or f"server error: {err.get('message', err) if isinstance(err, dict) else err}"
        return ERROR
    if ev.get("timings") is not None:
        rec.timings = ev["timings"]
    choices = ev.get("choices") or []
    if not choices:
        if ev.get("usage") is not None:
            rec.usage = ev["usage"]
            return USAGE
        return OTHER
    choice = choices[0]
    delta = choice.get("delta") or {}
    if choice.get("finish_reason"):
        rec.finish_reason = choice["finish_reason"]
    if ev.get("usage") is not None:
        rec.usage = ev["usage"]
    # A token is a non-empty content or reasoning delta; the role-only first chunk is not.
    # llama.cpp names the reasoning field reasoning_content, newer vLLM `reasoning`.
    thought = delta.get("reasoning_content") or delta.get("reasoning")
    if thought:
        reasoning.append(thought)
    if delta.get("content"):  # also beside reasoning (a </think> boundary): the first answer token
        text.append(delta["content"])
        return CONTENT
    if thought:
        return REASONING
    if choice.get("finish_reason"):
        return FINISH
    if delta.get("role"):
        return ROLE
    return OTHER
