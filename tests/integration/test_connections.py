"""Connection setup: connect time per request, keep-alive reuse where the server allows it, a
fresh connection where it says `Connection: close` (llama.cpp after a stream), and one resend
when a reused connection turns out closed before any response.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_connections.py."""
from __future__ import annotations

import asyncio

import pytest
from support import timedserver, wait_for

from benchrun.load.client import RequestSpec, make_session
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.measure.catalogue import compute_metrics


def _convs(n: int, **body):
    def conv(i):
        yield RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=3,
                          body={"ttft_ms": 2, "itl_ms": 1, **body}, tags={"i": i})
    return [conv(i) for i in range(n)]


def _run(url: str, convs, reuse: bool, concurrency: int = 1):
    async def go():
        async with make_session(30, {}, reuse_connections=reuse) as session:
            return await Engine(session, url + "/v1/chat/completions").run(convs, LoadPlan(concurrency=concurrency))
    return sorted(run_loop(go())[0], key=lambda r: r.id)


@pytest.fixture(scope="module")
def timed_url():
    with timedserver.running() as url:
        yield url


def test_keep_alive_connections_are_reused_and_setup_is_timed(timed_url):
    recs = _run(timed_url, _convs(6), reuse=True)
    assert all(r.ok for r in recs)
    assert [r.connection for r in recs] == ["new"] + ["reused"] * 5
    assert recs[0].connect_ns > 0 and all(r.connect_ns == 0 for r in recs[1:])
    m = compute_metrics(recs, 10**9)
    assert m["connections"] == {"new": 1, "reused": 5, "retried": 0}
    assert m["connect_ms"]["n"] == 1 and m["connect_ms"]["min"] > 0


def test_connection_close_gets_a_fresh_connection_each_time(timed_url):
    """llama.cpp's server answers a stream with `Connection: close`: reuse stays on, but no
    request ever rides on a connection the server is about to drop."""
    recs = _run(timed_url, _convs(5, close=True), reuse=True)
    assert all(r.ok for r in recs)
    assert [r.connection for r in recs] == ["new"] * 5 and not any(r.retried for r in recs)
    assert compute_metrics(recs, 10**9)["connect_ms"]["n"] == 5


def test_reuse_off_opens_a_connection_per_request(timed_url):
    recs = _run(timed_url, _convs(4), reuse=False)
    assert all(r.ok for r in recs) and [r.connection for r in recs] == ["new"] * 4


def test_llama_cpp_closes_after_a_stream_so_pooling_would_need_resends(tiny_server):
    """Why `auto` does not pool for llama.cpp: its server answers keep-alive, then closes the
    connection after the stream. Pooled anyway, no request is lost (each finds its connection
    closed before any response and is resent once); not pooled, none needs a resend."""
    convs = lambda: [_c(i) for i in range(6)]  # noqa: E731

    def _c(i):
        yield RequestSpec(messages=[{"role": "user", "content": f"{i}"}], max_tokens=4,
                          body={"temperature": 0.0, "cache_prompt": False}, tags={"i": i})

    fresh = _run(tiny_server.url, convs(), reuse=False)
    assert all(r.ok for r in fresh) and not any(r.retried for r in fresh)
    assert [r.connection for r in fresh] == ["new"] * 6
    # Every request after the first tries the kept connection and has to be sent again --
    # unless the server's close reached the pool first, and then it was never picked: a race
    # a busy client can lose every time. So pooled batches run until one shows a resend (no
    # request lost, none on a closed connection, in any of them).
    def resent():
        batch = _run(tiny_server.url, convs(), reuse=True)
        assert all(r.ok for r in batch), [r.error for r in batch]
        assert all(r.connection == "new" for r in batch)
        return sum(r.retried for r in batch)

    wait_for(resent, 120, "a pooled request resent after llama.cpp closed its connection", every=0)


class _DropsSecondRequest(asyncio.Protocol):
    """Answers the first request on a connection with keep-alive and a tiny stream, then
    closes the connection when a second request arrives on it, without answering: a server
    (or proxy) that dropped a kept-alive connection under the client."""

    def connection_made(self, transport):
        self.t, self.buf, self.served = transport, b"", 0

    def data_received(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                           if l.lower().startswith(b"content-length:")), 0)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            if self.served:
                self.t.close()
                return
            self.served += 1
            events = (b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
                      b'data: {"choices":[],"usage":{"completion_tokens":1,"prompt_tokens":1}}\n\n'
                      b"data: [DONE]\n\n")
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (len(events), events))


def test_a_reused_connection_found_closed_is_sent_once_more():
    async def go():
        server = await asyncio.get_running_loop().create_server(_DropsSecondRequest, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            async with make_session(10, {}, reuse_connections=True) as session:
                return (await Engine(session, url + "/v1/chat/completions").run(
                    _convs(3), LoadPlan(concurrency=1)))[0]
        finally:
            server.close()

    recs = sorted(run_loop(go()), key=lambda r: r.id)
    assert all(r.ok for r in recs), [r.error for r in recs]
    assert not recs[0].retried and recs[1].retried and recs[2].retried
    assert all(r.connection == "new" for r in recs)  # the resend went out on a new connection
    assert compute_metrics(recs, 10**9)["connections"]["retried"] == 2
