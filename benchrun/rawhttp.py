"""The hot path for plain-http servers: one POST, a streamed response, stamped per read.

aiohttp wakes the waiting task for every chunk it receives (a future, a task step, its
StreamReader): about 40 us of CPU per token on the 2-core test box, on the same cores as the
server being measured. Here the event loop's `data_received` callback itself stamps the bytes
(`perf_counter_ns` + list append) and the task sleeps until the response is over; HTTP framing
(status, headers, chunked encoding) is decoded afterwards, each body byte keeping the time of
the read that brought it. One fresh connection per request (`Connection: close`), as the
aiohttp path does. https and anything unusual use aiohttp (benchrun.client)."""
from __future__ import annotations

import asyncio
from bisect import bisect_right
from time import perf_counter_ns
from typing import Optional
from urllib.parse import urlsplit

Chunks = list  # [(ns, bytes)]


class HTTPFramingError(ValueError):
    pass


class _Proto(asyncio.Protocol):
    """Stamps every read. Wakes the task only when the headers are complete, when the
    response may be complete (terminal chunk, or Content-Length reached), and on close."""

    def __init__(self, segs: Chunks, loop: asyncio.AbstractEventLoop):
        self.segs = segs
        self.append = segs.append
        self.loop = loop
        self.wake = loop.create_future()
        self.transport: Optional[asyncio.Transport] = None
        self.lost = False
        self.exc: Optional[BaseException] = None
        self.seen_head = False
        self.size = 0
        self.need = 0  # total bytes when Content-Length is known

    def rearm(self) -> asyncio.Future:
        self.wake = self.loop.create_future()
        return self.wake

    def _wake(self) -> None:
        if not self.wake.done():
            self.wake.set_result(None)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.append((perf_counter_ns(), data))
        self.size += len(data)
        if (data.endswith(b"0\r\n\r\n") or (self.need and self.size >= self.need)
                or (not self.seen_head and b"\r\n\r\n" in data)):
            self._wake()

    def eof_received(self):
        return None  # let the transport close

    def connection_lost(self, exc) -> None:
        self.lost, self.exc = True, exc
        self._wake()


class Response:
    """The decoded response: status, headers, body pieces [(ns, bytes)], complete or not."""

    def __init__(self, segs: Chunks):
        self.status = 0
        self.headers: dict[str, str] = {}
        self.pieces: Chunks = []
        self.complete = False
        self.head_len = 0
        raw = b"".join(d for _, d in segs)
        he = raw.find(b"\r\n\r\n")
        if he < 0:
            return
        lines = raw[:he].decode("latin-1").split("\r\n")
        try:
            self.status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            raise HTTPFramingError(f"bad HTTP status line: {lines[0][:80]!r}") from None
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.head_len = he + 4
        ends, acc = [], 0
        for _, d in segs:
            acc += len(d)
            ends.append(acc)
        self._raw, self._segs, self._ends = raw, segs, ends
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._dechunk()
        else:
            cl = self.headers.get("content-length")
            stop = self.head_len + int(cl) if cl and cl.isdigit() else len(raw)
            self._take(self.head_len, min(stop, len(raw)))
            self.complete = bool(cl) and len(raw) >= stop
        del self._raw, self._segs, self._ends

    @property
    def body_length_known(self) -> Optional[int]:
        cl = self.headers.get("content-length")
        return self.head_len + int(cl) if cl and cl.isdigit() else None

    def _take(self, a: int, b: int) -> None:
        """Raw bytes [a, b) as pieces, split where reads ended: each keeps its read's time."""
        i = bisect_right(self._ends, a)
        while a < b and i < len(self._ends):
            end = min(b, self._ends[i])
            if end > a:
                self.pieces.append((self._segs[i][0], self._raw[a:end]))
            a = end
            i += 1

    def _dechunk(self) -> None:
        raw, p = self._raw, self.head_len
        while True:
            crlf = raw.find(b"\r\n", p)
            if crlf < 0:
                return
            try:
                size = int(raw[p:crlf].split(b";", 1)[0], 16)
            except ValueError:
                raise HTTPFramingError(f"bad chunk size line: {raw[p:crlf][:40]!r}") from None
            if size == 0:
                self.complete = True
                return
            a = crlf + 2
            self._take(a, min(a + size, len(raw)))
            p = a + size + 2
            if p > len(raw):
                return


async def post_stream(url: str, body: bytes, headers: dict, connect_timeout_s: Optional[float],
                      segs: Chunks) -> Response:
    """POST `body` to a plain-http `url`; every read lands in `segs` as (ns, bytes) while the
    task sleeps. Raises OSError/asyncio.TimeoutError on connect trouble, ConnectionError
    when the connection breaks before the response is complete."""
    u = urlsplit(url)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    head = [f"POST {path} HTTP/1.1", f"Host: {u.netloc}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in
             ("host", "content-type", "content-length", "connection")]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    loop = asyncio.get_running_loop()
    proto = _Proto(segs, loop)
    connect = loop.create_connection(lambda: proto, u.hostname, u.port or 80)
    transport, _ = await (asyncio.wait_for(connect, connect_timeout_s) if connect_timeout_s else connect)
    done = False
    try:
        transport.write(request)
        while True:
            await proto.wake
            resp = Response(segs)
            if resp.complete:
                done = True
                return resp
            if proto.lost:
                if resp.status and resp.body_length_known is None and \
                        "chunked" not in resp.headers.get("transfer-encoding", "").lower():
                    resp.complete = done = True  # a body delimited by the close itself
                    return resp
                why = f": {proto.exc}" if proto.exc else ""
                raise ConnectionError(f"connection closed before the response was complete{why}")
            proto.seen_head = proto.seen_head or bool(resp.status)
            proto.need = resp.body_length_known or 0
            proto.rearm()
            if proto.need and proto.size >= proto.need:
                proto._wake()
    finally:
        if not proto.lost:  # done: close politely; cancelled or broken: drop it at once
            transport.close() if done else transport.abort()
