"""A canned SSE chat server that is not the bottleneck, and the ceiling it lets one measure.
(A benchmark tool, not a test.)

The Python test servers (tests/support) cannot stream faster than benchrun reads, so they
cannot show where the client tops out. This serves llama.cpp-shaped replies (role, `max_tokens`
content events with per-chunk `timings`, finish, usage, [DONE]) in HTTP/1.1 chunked encoding,
paced by the body's `itl_ms` (0: each event written as soon as the last went out) after
`ttft_ms`, from one of two servers:
  - c (default): benchmarks/sse_server.c, built here with cc on first use: one epoll thread at
    a few microseconds of CPU per event, so on a 2-core machine the client has the cores;
  - python: --procs processes (default one per core) of a bare asyncio protocol on one
    SO_REUSEPORT port (~30 us of CPU per event: on few cores it competes with the client).
No JSON is decoded per request beyond the body's three numbers; no HTTP feature beyond what
aiohttp's client sends is understood.

  uv run python benchmarks/fast_server.py serve [--port 8123] [--server c|python] [--procs N]
      serve until Ctrl-C (prints "ready http://127.0.0.1:PORT")
  uv run python benchmarks/fast_server.py ceiling [--levels 64,256] [--tokens 256] [--itl-ms 0]
                                                  [--workers 1,2] [--rounds 3] [--server c|python]
      start the server, drive it with benchrun's engine at each concurrency and print the
      streamed tokens/s, benchrun's CPU per token and its self-check (loop lag, CPU share,
      saturated); --workers compares client processes (load.workers), round by round. On a
      machine with few cores the server's processes share them with the client: read the
      figures as a floor for the client, and say how busy the machine was.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

_NUM = {k: re.compile(rb'"%s"\s*:\s*([0-9.]+)' % k.encode()) for k in ("max_tokens", "itl_ms", "ttft_ms")}
_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
         b"Connection: keep-alive\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: dict) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def _events(n: int) -> list[bytes]:
    """The chunks of one n-token reply, llama.cpp's key order and per-chunk timings."""
    base = {"created": 1, "id": "chatcmpl-fast", "model": "fast", "system_fingerprint": "b0",
            "object": "chat.completion.chunk"}
    out = [_event({"choices": [{"finish_reason": None, "index": 0,
                                "delta": {"role": "assistant", "content": None}}], **base})]
    for i in range(1, n + 1):
        out.append(_event({"choices": [{"finish_reason": None, "index": 0, "delta": {"content": " tok"}}], **base,
                           "timings": {"cache_n": 0, "prompt_n": 8, "prompt_ms": 1.2, "prompt_per_token_ms": 0.15,
                                       "prompt_per_second": 6666.6, "predicted_n": i, "predicted_ms": i * 1.0,
                                       "predicted_per_token_ms": 1.0, "predicted_per_second": 1000.0}}))
    out.append(_event({"choices": [{"finish_reason": "length", "index": 0, "delta": {}}], **base}))
    out.append(_event({"choices": [], **base, "usage": {"completion_tokens": n, "prompt_tokens": 8,
                                                        "total_tokens": n + 8}, "timings": {"predicted_n": n}}))
    out.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return out


class _Http(asyncio.Protocol):
    cache: dict[int, list[bytes]] = {}

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"(?i)content-length:\s*(\d+)", self.buf[:end])
            size = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + size:
                return
            body, self.buf = self.buf[end + 4:end + 4 + size], self.buf[end + 4 + size:]
            self._answer(body)

    def _answer(self, body: bytes):
        def num(k, default):
            m = _NUM[k].search(body)
            return float(m.group(1)) if m else default

        n = int(num("max_tokens", 16))
        itl, ttft = num("itl_ms", 0.0) / 1e3, num("ttft_ms", 0.0) / 1e3
        evs = self.cache.get(n) or self.cache.setdefault(n, _events(n))
        self.t.write(_HEAD + evs[0])
        if itl <= 0 and ttft <= 0:
            asyncio.get_running_loop().create_task(self._burst(evs))
        else:
            asyncio.get_running_loop().create_task(self._paced(evs, ttft, itl))

    async def _burst(self, evs):
        # One write per event, yielding between them so they leave as separate segments
        # (one big write would arrive as one chunk, which no real server sends).
        for e in evs[1:]:
            if self.t.is_closing():
                return
            self.t.write(e)
            await asyncio.sleep(0)

    async def _paced(self, evs, ttft, itl):
        loop = asyncio.get_running_loop()
        due = loop.time() + ttft
        for i, e in enumerate(evs[1:]):
            if i:
                due += itl
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.t.is_closing():
                return
            self.t.write(e)


def _worker(port: int) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        server = await asyncio.get_running_loop().create_server(_Http, sock=sock, backlog=4096)
        print("ready", flush=True)
        await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    asyncio.run(main())


def c_server() -> str:
    """benchmarks/sse_server.c built (once per source version) next to the other cached
    benchrun builds: the same replies at a few microseconds of CPU per event."""
    import hashlib
    import shutil

    src = os.path.join(HERE, "sse_server.c")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("--server c needs a C compiler (cc); or use --server python")
    with open(src, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    cache = os.environ.get("BENCHRUN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "benchrun")
    exe = os.path.join(cache, "bench", f"sse_server-{tag}")
    if not os.path.exists(exe):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.run([cc, "-O2", "-o", exe + ".tmp", src], check=True)
        os.replace(exe + ".tmp", exe)
    return exe


class Servers:
    """`procs` server processes on one port (the Python one, or `exe`, the C one); a context
    manager that yields the base URL."""

    def __init__(self, port: int, procs: int, exe: str | None = None):
        self.port, self.procs, self.exe, self.children = port, procs, exe, []

    def __enter__(self) -> str:
        for _ in range(self.procs):
            cmd = [self.exe] if self.exe else [sys.executable, __file__, "_worker"]
            p = subprocess.Popen(cmd + [str(self.port)], stdout=subprocess.PIPE, text=True)
            self.children.append(p)
            if p.stdout.readline().strip() != "ready":
                self.__exit__()
                raise SystemExit("a server process did not start")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        for p in self.children:
            p.terminate()
        for p in self.children:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ceiling(url: str, c: int, tokens: int, itl_ms: float, requests: int, workers: int = 1) -> dict:
    """One level: `requests` replies of `tokens` tokens at concurrency c, from benchrun's engine
    in this process (workers=1, as a job runs by default) or from `workers` worker processes
    (load/workers.py, as load.workers=N runs), which split the concurrency."""
    sys.path.insert(0, os.path.dirname(HERE))
    from benchrun.load.client import RequestSpec, make_session
    from benchrun.load.engine import Engine, LoadPlan, run_loop
    from benchrun.load.selfcheck import SelfCheck, summary_of
    from benchrun.load.workers import Setup, Workers
    from benchrun.load.workshare import worker_parts

    spec = RequestSpec(messages=[{"role": "user", "content": "x"}], max_tokens=tokens,
                       body={"itl_ms": itl_ms, "timings_per_token": True}, reply_needed=False)

    def conv():
        yield spec

    out: dict = {}

    async def go():
        async with make_session(60, {}, reuse_connections=True) as session:
            engine = Engine(session, url + "/v1/chat/completions")
            check = SelfCheck()
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            recs, wall = await engine.run([conv() for _ in range(requests)], LoadPlan(concurrency=c), check=check)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            out.update(recs=recs, wall=wall, check=check.summary(), stream_cpu=check.cpu_s,
                       cpu=(r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))

    async def go_workers():
        pool = Workers(workers, Setup(url + "/v1/chat/completions", None, {}, {}, 60.0, True), id_start=0)
        try:
            await pool.start()  # not timed: a job starts its workers before the measured window
            parts = worker_parts(LoadPlan(concurrency=c), [[spec] for _ in range(requests)], workers, 0)
            recs, wall = await pool.run(0, parts, lambda r: None, lambda r: None)
        finally:
            snaps = await pool.close()
        # CPU: the workers' own while streaming (their self-checks); the post-stream parse is not in it
        out.update(recs=recs, wall=wall, check=summary_of(snaps), stream_cpu=sum(s[1] for s in snaps), cpu=None)

    run_loop(go() if workers == 1 else go_workers())
    bad = [r.error for r in out["recs"] if not r.ok]
    toks = sum(sum(r.event_tokens or []) for r in out["recs"])
    return {"c": c, "workers": workers, "failed": len(bad), "first_error": bad[0] if bad else None, "tokens": toks,
            "tok_s": toks / (out["wall"] / 1e9),
            "cpu_us_per_token": out["cpu"] / max(toks, 1) * 1e6 if out["cpu"] is not None else None,
            "stream_cpu_us_per_token": out["stream_cpu"] / max(toks, 1) * 1e6, "client": out["check"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=8123)
    c = sub.add_parser("ceiling")
    for p in (s, c):
        p.add_argument("--server", choices=("c", "python"), default="c",
                       help="c: sse_server.c, one process, a few us of CPU per event (default); "
                            "python: asyncio processes, ~30 us per event")
        p.add_argument("--procs", type=int, help="server processes (default: 1 for c, one per core for python)")
    c.add_argument("--levels", default="64,256")
    c.add_argument("--tokens", type=int, default=256)
    c.add_argument("--itl-ms", type=float, default=0.0)
    c.add_argument("--requests", type=int, default=0, help="per level (default: 2 x concurrency)")
    c.add_argument("--workers", default="1", help="client processes to compare, e.g. 1,2 (load.workers)")
    c.add_argument("--rounds", type=int, default=1, help="alternating rounds of every (level, workers)")
    w = sub.add_parser("_worker")
    w.add_argument("port", type=int)
    args = ap.parse_args()
    if args.cmd == "_worker":
        _worker(args.port)
        return
    exe = c_server() if args.server == "c" else None
    args.procs = args.procs or (1 if exe else os.cpu_count() or 1)
    if args.cmd == "serve":
        with Servers(args.port, args.procs, exe) as url:
            print(f"ready {url} ({args.procs} processes)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}); "
          f"server: {args.server}, {args.procs} process(es)")
    counts = [int(x) for x in args.workers.split(",")]
    with Servers(_free_port(), args.procs, exe) as url:
        rows = []
        for rnd in range(args.rounds):  # alternating, so drift on a shared machine hits every setting
            for lv in (int(x) for x in args.levels.split(",")):
                for w in counts if rnd % 2 == 0 else counts[::-1]:
                    rows.append({**ceiling(url, lv, args.tokens, args.itl_ms, args.requests or 2 * lv, w),
                                 "round": rnd})
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5} {'c':>5} {'workers':>7} {'tokens/s':>10} {'CPU us/tok':>11} {'stream':>7} "
          f"{'lag p50':>8} {'p99':>7} {'max':>7} {'cpu%':>6}  saturated")
    for r in rows:
        lag, ck = r["client"]["loop_lag_ms"], r["client"]
        cpu = f"{r['cpu_us_per_token']:>11.1f}" if r["cpu_us_per_token"] is not None else f"{'-':>11}"
        print(f"{r['round']:>5} {r['c']:>5} {r['workers']:>7} {r['tok_s']:>10.0f} {cpu} "
              f"{r['stream_cpu_us_per_token']:>7.1f} {lag['p50'] or 0:>8.2f} "
              f"{lag['p99'] or 0:>7.2f} {lag['max'] or 0:>7.2f} {ck['cpu_pct'] or 0:>6.0f}  {ck['saturated']}"
              + (f"  ({r['failed']} failed: {r['first_error']})" if r["failed"] else ""))
        if ck["why"]:
            print(f"      why: {ck['why']}")
    if len(counts) > 1:
        import statistics

        base = counts[0]
        for lv in sorted({r["c"] for r in rows}):
            med = {w: statistics.median(r["tok_s"] for r in rows if r["c"] == lv and r["workers"] == w)
                   for w in counts}
            print(f"c={lv}: median tokens/s " + ", ".join(f"{w} worker(s) {med[w]:.0f}" for w in counts)
                  + "; " + ", ".join(f"{w}/{base}: {med[w] / med[base]:.2f}x" for w in counts[1:]))


if __name__ == "__main__":
    main()
