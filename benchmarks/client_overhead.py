"""How much error and CPU does benchrun's client add? (A benchmark, not a test.)

Starts the tests' timed server (tests/support/timedserver.py) in its own process (a streaming
server that logs when it really sent each token), then, at each concurrency, drives it with benchrun's engine and with a
minimal aiohttp client (benchmarks/minimal_client.py) in this same invocation, and prints:
  - TTFT error and ITL error (measured minus true, ms; p50, p99, min),
  - client CPU microseconds per streamed token (user + system time of this process).
The minimal client is the floor that Python, loopback and the test server impose.

  uv run python benchmarks/client_overhead.py [--levels 1,32,256] [--tokens 64] [--rounds 2]
                                              [--no-token-counts] [--workers N]

--workers N adds benchrun with load.workers=N (its concurrency split over N processes) as a
third client, so its timing error stands beside one process's at the same load.

By default every request asks for llama.cpp's per-chunk `timings` (timings_per_token, what
benchrun sends a llama.cpp server), so each event carries the same ~250 extra bytes it does
from llama-server; --no-token-counts measures the plain stream.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The timed server is a test fixture (tests/support), checked by the timer tests; borrowed here.
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import minimal_client  # noqa: E402
from support import timedserver  # noqa: E402

from benchrun.load.client import RequestSpec, make_session  # noqa: E402
from benchrun.load.engine import Engine, LoadPlan, run_loop  # noqa: E402
from benchrun.load.records import RecordWriter  # noqa: E402
from benchrun.load.selfcheck import SelfCheck  # noqa: E402
from benchrun.measure import metrics as M  # noqa: E402

# Known timing per level: ITL is longer at 256 so the (Python) test server keeps up on 2 cores.
DECODE_CPU: list[float] = []
CLIENT: list[dict] = []  # benchrun's self-check per run, to show beside the figures
TIMING = {1: (20.0, 10.0), 32: (20.0, 10.0), 256: (20.0, 25.0)}


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


TOKEN_COUNTS = [True]  # set from --no-token-counts


def plan_bodies(c: int, tokens: int, tag: str) -> list[tuple[str, dict]]:
    ttft, itl = TIMING.get(c, (20.0, 10.0))
    n = max(10, 2 * c) if c < 256 else c
    return [(f"{tag}{i}", {"messages": [{"role": "user", "content": "x"}], "max_tokens": tokens,
                           "stream": True, "ttft_ms": ttft, "itl_ms": itl, "rid": f"{tag}{i}",
                           "timings_per_token": TOKEN_COUNTS[0]})
            for i in range(n)]


def spec_of(rid: str, body: dict) -> RequestSpec:
    """One planned body as the engine's request: the timed server's fields ride in the body."""
    return RequestSpec(messages=body["messages"], max_tokens=body["max_tokens"],
                       body={k: body[k] for k in ("ttft_ms", "itl_ms", "rid", "timings_per_token")},
                       tags={"rid": rid}, reply_needed=False)


def run_benchrun(url: str, bodies, c: int) -> dict[str, list[int]]:
    """benchrun as a job runs it: records written to a requests.jsonl (a temp file) and the
    client's self-check (load/selfcheck.py) running, so their CPU is counted too."""
    def conv(rid, body):
        yield spec_of(rid, body)

    async def go():
        async with make_session(60, {}) as session:
            engine = Engine(session, url + "/v1/chat/completions", on_record=writer.write)
            flush = engine._flush_deferred

            def timed_flush():  # the decoding done after the run, counted apart
                c0 = cpu_s()
                flush()
                DECODE_CPU.append(cpu_s() - c0)

            engine._flush_deferred = timed_flush
            check = SelfCheck()
            recs, _ = await engine.run([conv(rid, b) for rid, b in bodies], LoadPlan(concurrency=c),
                                       check=check)
            CLIENT.append(check.summary())
            return recs

    with tempfile.TemporaryDirectory() as tmp:
        writer = RecordWriter(Path(tmp) / "requests.jsonl")
        try:
            recs = run_loop(go())
        finally:
            writer.close()
    bad = [r.error for r in recs if not r.ok]
    if bad:
        raise SystemExit(f"benchrun client: {len(bad)} failed requests, e.g. {bad[0]}")
    return {r.tags["rid"]: [r.start_ns + t for t in M.token_offsets_ns(r)] for r in recs}


def run_workers(url: str, bodies, c: int) -> dict[str, list[int]]:
    """benchrun with load.workers=WORKERS[0] (load/workers.py): the concurrency split over that
    many processes, their records merged. Their CPU is what their self-checks measured while
    streaming (a process's start-up is not a per-token cost); the total is not shown."""
    from benchrun.load.workers import Setup, Workers
    from benchrun.load.workshare import worker_parts

    specs = [[spec_of(rid, b)] for rid, b in bodies]

    n = min(WORKERS[0], c)  # as a job caps it: each worker needs a slot of the concurrency

    async def go():
        pool = Workers(n, Setup(url + "/v1/chat/completions", None, {}, {}, 60.0, False), id_start=0)
        try:
            await pool.start()  # as a job does, before the measured window
            recs, _ = await pool.run(0, worker_parts(LoadPlan(concurrency=c), specs, n, 0),
                                     lambda r: None, lambda r: None)
        finally:
            WORKER_CPU.append(sum(snap[1] for snap in await pool.close()))  # their self-checks' CPU
        return recs

    recs = run_loop(go())
    bad = [r.error for r in recs if not r.ok]
    if bad:
        raise SystemExit(f"benchrun workers: {len(bad)} failed requests, e.g. {bad[0]}")
    return {r.tags["rid"]: [r.start_ns + t for t in M.token_offsets_ns(r)] for r in recs}


WORKERS = [0]  # set from --workers
WORKER_CPU: list[float] = []  # the worker processes' CPU while streaming, per run


def run_minimal(url: str, bodies, c: int) -> dict[str, list[int]]:
    return run_loop(minimal_client.run(url + "/v1/chat/completions", bodies, c))


def errors(measured: dict, truth: dict) -> dict:
    ttft, itl, tokens = [], [], 0
    for rid, arrived in measured.items():
        sent = truth[rid]
        if len(arrived) != len(sent):
            raise SystemExit(f"{rid}: {len(arrived)} token events measured, {len(sent)} sent")
        a, s = np.array(arrived, dtype=np.int64), np.array(sent, dtype=np.int64)
        ttft.append((a[0] - s[0]) / 1e6)
        itl.extend((np.diff(a) - np.diff(s)) / 1e6)
        tokens += len(a)
    ttft, itl = np.array(ttft), np.array(itl)
    return {"ttft_err_p50": float(np.median(ttft)), "ttft_err_p99": float(np.percentile(ttft, 99)),
            "ttft_err_min": float(ttft.min()),
            "itl_err_p50": float(np.median(itl)), "itl_err_p99": float(np.percentile(itl, 99)),
            "itl_err_min": float(itl.min()), "tokens": tokens}


def measure(url: str, name: str, c: int, tokens: int, rnd: int) -> dict:
    bodies = plan_bodies(c, tokens, f"{name}-{c}-{rnd}-")
    gc.collect()
    fn = {"benchrun": run_benchrun, "minimal": run_minimal}.get(name, run_workers)
    DECODE_CPU.clear()
    c0 = cpu_s()
    measured = fn(url, bodies, c)
    cpu = cpu_s() - c0
    out = errors(measured, timedserver.fetch_log(url))
    out["cpu_us_per_token"] = cpu / out["tokens"] * 1e6
    out["cpu_hot_us_per_token"] = (cpu - sum(DECODE_CPU)) / out["tokens"] * 1e6
    if name.startswith("workers"):
        out["cpu_us_per_token"] = float("nan")
        out["cpu_hot_us_per_token"] = WORKER_CPU[-1] / out["tokens"] * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,32,256")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per level (median kept)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--no-token-counts", action="store_true", help="plain stream, no per-chunk timings")
    ap.add_argument("--workers", type=int, default=0,
                    help="also measure benchrun with load.workers=N (N worker processes), as client 'workersN'")
    args = ap.parse_args()
    TOKEN_COUNTS[0] = not args.no_token_counts
    WORKERS[0] = args.workers
    levels = [int(x) for x in args.levels.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}); "
          f"per-chunk timings: {'on' if TOKEN_COUNTS[0] else 'off'}")
    rows = []
    with timedserver.running() as url:
        run_minimal(url, plan_bodies(1, 4, "warm-"), 1)  # warm both code paths and the server
        run_benchrun(url, plan_bodies(1, 4, "warm2-"), 1)
        timedserver.fetch_log(url)
        for c in levels:
            names = ["minimal", "benchrun"] + ([f"workers{args.workers}"] if args.workers else [])
            got: dict[str, list[dict]] = {n: [] for n in names}
            for rnd in range(args.rounds):
                order = names if rnd % 2 == 0 else names[::-1]
                for name in order:
                    got[name].append(measure(url, name, c, args.tokens, rnd))
            for name, runs in got.items():
                row = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
                rows.append({"client": name, "concurrency": c, **row})
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("errors in ms (measured - true); CPU in us per token: total, and while streaming")
    hdr = ("client", "c", "TTFT err p50", "p99", "min", "ITL err p50", "p99", "min", "CPU/tok", "hot")
    print("{:<9} {:>4} {:>12} {:>7} {:>7} {:>11} {:>7} {:>7} {:>8} {:>6}".format(*hdr))
    for r in rows:
        print(f"{r['client']:<9} {r['concurrency']:>4} {r['ttft_err_p50']:>12.3f} {r['ttft_err_p99']:>7.3f} "
              f"{r['ttft_err_min']:>7.3f} {r['itl_err_p50']:>11.3f} {r['itl_err_p99']:>7.3f} "
              f"{r['itl_err_min']:>7.3f} {r['cpu_us_per_token']:>8.1f} {r['cpu_hot_us_per_token']:>6.1f}")
    by = {(r["client"], r["concurrency"]): r for r in rows}
    if ("benchrun", 32) in by and ("minimal", 32) in by:
        b, m = by[("benchrun", 32)], by[("minimal", 32)]
        print(f"c=32 benchrun - minimal: TTFT p50 {b['ttft_err_p50'] - m['ttft_err_p50']:+.3f} ms "
              f"(target 0.5), p99 {b['ttft_err_p99'] - m['ttft_err_p99']:+.3f} ms (target 2); "
              f"ITL p50 {b['itl_err_p50'] - m['itl_err_p50']:+.3f}, "
              f"p99 {b['itl_err_p99'] - m['itl_err_p99']:+.3f} ms (target 0.3)")
    if ("benchrun", 256) in by:
        b, m = by[("benchrun", 256)], by.get(("minimal", 256), {})
        print(f"c=256 CPU per token: benchrun {b['cpu_us_per_token']:.1f} us ({b['cpu_hot_us_per_token']:.1f} while "
              f"streaming), minimal client {m.get('cpu_us_per_token', float('nan')):.1f} us (target <= 20)")
    for c in levels:
        if ("benchrun", c) in by and ("minimal", c) in by:
            b, m = by[("benchrun", c)], by[("minimal", c)]
            print(f"c={c} total CPU per token, benchrun / minimal client: "
                  f"{b['cpu_us_per_token'] / m['cpu_us_per_token']:.2f}x (target <= 1.10)")
    for chk in CLIENT[-len(levels) * args.rounds:]:
        if chk["saturated"]:
            print(f"benchrun's self-check said saturated in one run: {chk['why']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
