"""How much does benchrun slow the server it measures? (A benchmark, not a test.)

benchrun shares the machine with the server. This starts the real embedded llama.cpp server on
`tiny_wide` and, at concurrency 1, 3 and 16, drives the same workload with benchrun's engine
(with its /metrics scraper and record writer, as in a job) and with a minimal aiohttp client,
alternating, and compares the server's own decode time per token, from /metrics counter
deltas (tokens_predicted_seconds_total / tokens_predicted_total). Then it measures benchrun's
fixed overhead per job (server start and warm-up requests excluded): a job's wall time minus
its measured time, for jobs on an already running `tiny` server.

  uv run python benchmarks/perturbation.py [--levels 1,3,16] [--rounds 4] [--tokens 24]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minimal_client  # noqa: E402

from benchrun.load.client import RequestSpec, make_session  # noqa: E402
from benchrun.load.engine import Engine, LoadPlan, run_loop  # noqa: E402
from benchrun.load.records import RecordWriter  # noqa: E402
from benchrun.measure.promscrape import Scraper, parse_prometheus  # noqa: E402


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics") as resp:
        return parse_prometheus(resp.read().decode())


def bodies(c: int, rnd: int, tokens: int, tag: str) -> list[tuple[str, dict]]:
    n = max(2, c)  # one request per slot: every round is one batch
    # Same prompts for both clients (the tag only names the request); never cached.
    return [(f"{tag}{i}", {"messages": [{"role": "user", "content": f"{rnd} {i} tell me a story about benchmarks"}],
                           "max_tokens": tokens, "stream": True, "stream_options": {"include_usage": True},
                           "ignore_eos": True, "cache_prompt": False, "temperature": 0.0})
            for i in range(n)]


def drive_benchrun(url: str, work, c: int, out_dir: Path) -> None:
    def conv(body):
        yield RequestSpec(messages=body["messages"], max_tokens=body["max_tokens"],
                          body={k: body[k] for k in ("ignore_eos", "cache_prompt", "temperature")},
                          reply_needed=False, expected_tokens=body["max_tokens"])

    writer = RecordWriter(out_dir / "requests.jsonl")

    async def go():
        async with make_session(600, {}) as session:
            scraper = Scraper(session, url, 0.5)  # as in a job
            await scraper.start()
            recs, _ = await Engine(session, url + "/v1/chat/completions", on_record=writer.write).run(
                [conv(b) for _, b in work], LoadPlan(concurrency=c))
            await scraper.stop()
            return recs

    try:
        recs = run_loop(go())
    finally:
        writer.close()
    bad = [r.error for r in recs if not r.ok]
    if bad:
        raise SystemExit(f"benchrun: {len(bad)} failed requests, e.g. {bad[0]}")


def drive_minimal(url: str, work, c: int, out_dir: Path) -> None:
    run_loop(minimal_client.run(url + "/v1/chat/completions", work, c))


def measure(url: str, name: str, c: int, rnd: int, tokens: int, out_dir: Path) -> dict:
    work = bodies(c, rnd, tokens, f"{name}-")
    a = scrape(url)
    t0 = time.perf_counter()
    (drive_benchrun if name == "benchrun" else drive_minimal)(url, work, c, out_dir)
    wall = time.perf_counter() - t0
    b = scrape(url)
    n = b["tokens_predicted_total"] - a["tokens_predicted_total"]
    if n != len(work) * tokens:
        raise SystemExit(f"{name}: server predicted {n} tokens, expected {len(work) * tokens}")
    return {"ms_per_token": (b["tokens_predicted_seconds_total"] - a["tokens_predicted_seconds_total"]) / n * 1e3,
            "tokens_per_s": n / wall}


def job_overhead(jobs: int) -> list[float]:
    """Per-job wall minus measured wall, for jobs on a server that is already running."""
    from benchrun.hydra_setup import compose, to_config
    from benchrun.job import run_job
    from benchrun.servers import ServerPool

    # The typed config the CLI hands a job: composed by Hydra, converted once.
    cfg = to_config(compose(["model=tiny", "workload.requests=4", "workload.output_tokens=8",
                             "workload.input_tokens=64", "concurrency=2", "load.warmup_requests=0"]))
    pool = ServerPool()
    out = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(jobs + 1):
                t0 = time.perf_counter()
                res = run_job(cfg, Path(tmp) / f"{i}_job", pool, i, "overhead")
                wall = time.perf_counter() - t0
                if res["status"] != "ok":
                    raise SystemExit(f"job failed: {res['error']}")
                if i:  # job 0 started the server
                    out.append({"job_wall_s": wall, "measured_s": res["metrics"]["wall_s"],
                                "overhead_s": wall - res["metrics"]["wall_s"]})
    finally:
        pool.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,3,16")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    from benchrun.config import ModelConfig
    from benchrun.servers import build_server
    from benchrun.servers.base import stop_process

    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        handle = build_server(ModelConfig(name="tiny_wide", tiny="tiny_wide", parallel=max(levels),
                                          ctx_size=512 * max(levels)), Path(tmp) / "server.log")
        try:
            url = handle.url
            drive_minimal(url, bodies(1, -1, 4, "warm-"), 1, Path(tmp))
            for c in levels:
                got: dict[str, list[dict]] = {"minimal": [], "benchrun": []}
                for rnd in range(args.rounds):
                    order = ("minimal", "benchrun") if rnd % 2 == 0 else ("benchrun", "minimal")
                    for name in order:
                        got[name].append(measure(url, name, c, rnd, args.tokens, Path(tmp)))
                med = {k: float(np.median([r["ms_per_token"] for r in v])) for k, v in got.items()}
                low = {k: float(np.min([r["ms_per_token"] for r in v])) for k, v in got.items()}
                rows.append({"concurrency": c, "minimal_ms_per_token": med["minimal"],
                             "benchrun_ms_per_token": med["benchrun"],
                             "slowdown_pct": (med["benchrun"] / med["minimal"] - 1) * 100,
                             # Other load on a shared box only ever adds time: the fastest
                             # round of each is the least disturbed.
                             "slowdown_min_pct": (low["benchrun"] / low["minimal"] - 1) * 100,
                             "rounds": {k: [r["ms_per_token"] for r in v] for k, v in got.items()}})
        finally:
            stop_process(handle.process, 5.0)
    print("server decode time per token (ms, median of rounds; /metrics counter deltas)")
    print(f"{'c':>3} {'minimal':>9} {'benchrun':>9} {'slowdown':>9} {'(fastest)':>9}   rounds (minimal | benchrun)")
    for r in rows:
        rm = " ".join(f"{x:.2f}" for x in r["rounds"]["minimal"])
        rb = " ".join(f"{x:.2f}" for x in r["rounds"]["benchrun"])
        print(f"{r['concurrency']:>3} {r['minimal_ms_per_token']:>9.3f} {r['benchrun_ms_per_token']:>9.3f} "
              f"{r['slowdown_pct']:>+8.1f}% {r['slowdown_min_pct']:>+8.1f}%   {rm} | {rb}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import benchrun.cli, benchrun.job"], check=True)
    startup = time.perf_counter() - t0
    jobs = job_overhead(args.jobs)
    print("fixed overhead per job (tiny, server reused, no warm-up request): "
          + ", ".join(f"{j['overhead_s']:.2f} s" for j in jobs)
          + f"; once per invocation, Python + imports: {startup:.2f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"decode": rows, "jobs": jobs, "startup_s": startup}, fh, indent=2)


if __name__ == "__main__":
    main()
