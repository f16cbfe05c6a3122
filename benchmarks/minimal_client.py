"""The floor: a minimal aiohttp streaming client (~30 lines of logic), no benchrun code.

Stamps each received chunk with perf_counter_ns and does everything else after the stream."""
from __future__ import annotations

import asyncio
import json
from time import perf_counter_ns

import aiohttp

TOKEN = b'"delta":{"content":"'  # llama.cpp / timed server: one content delta per token event


async def run(url: str, bodies: list[tuple[str, dict]], concurrency: int) -> dict[str, list[int]]:
    """POST each (rid, body) with `concurrency` workers; return {rid: [arrival ns per token]}."""
    raw: dict[str, list[tuple[int, bytes]]] = {}
    todo = list(reversed(bodies))
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        async def worker() -> None:
            while todo:
                rid, body = todo.pop()
                chunks = raw[rid] = []
                async with s.post(url, data=json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"}) as resp:
                    async for chunk in resp.content.iter_any():
                        chunks.append((perf_counter_ns(), chunk))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {rid: token_times(chunks) for rid, chunks in raw.items()}


def token_times(chunks: list[tuple[int, bytes]]) -> list[int]:
    """Each token event gets the time of the chunk in which its marker was complete."""
    data = b"".join(c for _, c in chunks)
    ends, pos = [], 0
    for t, c in chunks:
        pos += len(c)
        ends.append((pos, t))
    out, i, k = [], data.find(TOKEN), 0
    while i >= 0:
        while ends[k][0] < i + len(TOKEN):
            k += 1
        out.append(ends[k][1])
        i = data.find(TOKEN, i + 1)
    return out
