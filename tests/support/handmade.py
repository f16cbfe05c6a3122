"""Output dirs of hand-made jobs, for reports, diffs and verdicts without a server:
requests.jsonl of synthetic records with known timings, and result.json computed from them by
benchrun's own metric functions; plus readers of what a report wrote (PNG size, a Markdown table)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from benchrun.load.records import RecordWriter, RequestRecord
from benchrun.measure.catalogue import compute_metrics
from benchrun.measure.metrics import server_timings
from benchrun.results import write_result

SHA = "ab" * 32


def make_records(n: int, ttft_ms: float, itl_ms: float, tokens: int, rng, jitter: float = 0.1,
                 repeat: int = 0, start_ns: int = 0, concurrency: int = 1) -> tuple[list, int]:
    """n complete requests; TTFT and ITL drawn around the given means (relative sd `jitter`)."""
    recs, t = [], start_ns
    for i in range(n):
        ttft = max(0.1, rng.normal(ttft_ms, ttft_ms * jitter))
        gaps = np.maximum(0.01, rng.normal(itl_ms, itl_ms * jitter, tokens - 1))
        offs = np.concatenate([[ttft], ttft + np.cumsum(gaps)]) * 1e6
        ev = [0] + [int(x) for x in offs] + [int(offs[-1]) + 1000] * 3
        recs.append(RequestRecord(
            id=i, repeat=repeat, start_ns=t, end_ns=t + ev[-1] + 1000, event_ns=ev,
            event_kinds="r" + "c" * tokens + "fud", status=200, finish_reason="length", done=True,
            usage={"completion_tokens": tokens, "prompt_tokens": 100},
            timings={"predicted_per_second": 1000 / itl_ms, "prompt_per_second": 100 / ttft * 1000},
            expected_tokens=tokens))
        t += ev[-1] // concurrency
    return recs, t - start_ns


def make_job(root: Path, num: int, model: str, c: int, ttft_ms: float, itl_ms: float, *, repeats: int = 1,
             n: int = 30, tokens: int = 16, seed: int = 0, jitter: float = 0.1, tasks: list | None = None,
             status: str = "ok", error: str | None = None, extra: dict | None = None,
             path: str | None = None, sha: str = SHA, scale: dict | None = None,
             wobble: tuple[int, float] | None = None) -> Path:
    """One job dir with requests.jsonl and a schema-valid result.json. `scale` multiplies the
    records' TTFT after drawing (a planted regression on the very same requests); `wobble`
    (seed, relative sd) stretches each request's timeline by a small random factor (noise)."""
    rng = np.random.default_rng(seed)
    wrng = np.random.default_rng(wobble[0]) if wobble else None
    d = root / f"{num}_{model}_c{c}"
    d.mkdir(parents=True)
    runs, walls = [], []
    w = RecordWriter(d / "requests.jsonl")
    for rep in range(repeats if status == "ok" else 0):
        recs, wall = make_records(n, ttft_ms, itl_ms, tokens, rng, jitter, rep, concurrency=c)
        if scale:
            recs = [_scaled(r, scale.get("ttft", 1.0)) for r in recs]
        if wrng is not None:
            for r in recs:
                f = 1.0 + wrng.normal(0, wobble[1])
                r.event_ns = [int(x * f) for x in r.event_ns]
                r.end_ns = r.start_ns + int((r.end_ns - r.start_ns) * f)
        for r in recs:
            w.write(r)
        runs.append(recs)
        walls.append(wall)
    w.close()
    records = [r for run in runs for r in run]
    m = compute_metrics(records, sum(walls))
    res = {
        "schema_version": 1, "status": status, "error": error, "run_id": "handmade",
        "job": {"num": num, "name": d.name, "started_at": "2026-01-02T03:04:05+00:00",
                "finished_at": "2026-01-02T03:05:05+00:00",
                "overrides": [f"model={model}", f"concurrency={c}"]},
        "model": {"name": model, "path": path or f"/models/{model}.gguf", "sha256": sha, "size_bytes": 2**30,
                  "quantization": "Q4_K_M", "ctx_size": 40960, "parallel": 3,
                  "hub_repo": f"org/{model}-GGUF", "hub_file": f"{model}.gguf"},
        "server": {"backend": "llama_server", "command": ["llama-server"], "pid": 1, "build_info": "b1234",
                   "startup_s": 1.0, "reused": False, "url": None},
        "concurrency": c, "repeats": repeats, "workload": {"name": "agentic", "kind": "agents", "cache_prompt": False},
        "hardware": {"name": "rtx4090", "gpu": "NVIDIA GeForce RTX 4090", "gpu_memory_mib": 24564},
        "load": {"warmup_requests": 1}, "metrics": m,
        "repeat_metrics": [compute_metrics(r, wl) for r, wl in zip(runs, walls)],
        "server_timings": server_timings(records, m["decode_tok_s"]["mean"]),
        "tasks": tasks or [],
    }
    for k, v in (extra or {}).items():
        if k == "memory":
            res["server"]["memory"] = v
        else:
            res[k] = v
    write_result(d, res)
    return d


def _scaled(r: RequestRecord, f: float) -> RequestRecord:
    """The same request with its TTFT multiplied by f (token gaps unchanged)."""
    first = r.event_ns[1]
    shift = int(first * (f - 1))
    r.event_ns = [0] + [x + shift for x in r.event_ns[1:]]
    r.end_ns += shift
    return r


def png_size(p: Path) -> tuple[int, int]:
    b = p.read_bytes()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", f"{p} is not a PNG"
    return struct.unpack(">II", b[16:24])


def table_after(md: str, heading: str) -> list[list[str]]:
    """The first Markdown table after `heading`, as rows of cells (header row first)."""
    part = md.split(heading, 1)[1]
    rows = []
    for line in part.splitlines():
        if line.startswith("|"):
            if set(line) <= set("|-: "):
                continue
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows


def sweep(root: Path, *, repeats: int = 1, ttft_scale: float = 1.0, jitter_seed: int = 0, **kw) -> Path:
    """Two jobs (C1, C2). The same underlying requests (seed) for every dir; jitter_seed adds
    +-3% per-request noise on top (run-to-run wobble), ttft_scale plants a regression."""
    for num, c in enumerate((1, 2)):
        make_job(root, num, "m", c, 100 * c, 10, repeats=repeats, n=40, seed=100 + num,
                 scale={"ttft": ttft_scale}, wobble=(jitter_seed, 0.03) if jitter_seed else None, **kw)
    return root


def planted_regression(root: Path) -> dict[str, Path]:
    """base, noise, slow (+20% TTFT), and a calibration file from 4 identical runs of this setup."""
    from benchrun.analysis.calibration import calibrate, save

    d = {"base": sweep(root / "base"), "noise": sweep(root / "noise", jitter_seed=1),
         "slow": sweep(root / "slow", ttft_scale=1.2, jitter_seed=2)}
    aa = [d["base"], d["noise"]] + [sweep(root / f"aa{i}", jitter_seed=10 + i) for i in range(2)]
    d["cal"] = save(calibrate(aa), root / "noise.json")
    return d


MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def footnote(md: str, cell: str, heading: str = "## Summary") -> str:
    """The Summary footnote a Winner cell's marker points to ('' for a cell without one)."""
    mark = cell.strip()[-1:]
    if mark not in MARKS:
        return ""
    part = md.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in part.splitlines() if ln.startswith(mark + " ")]
    assert len(lines) == 1, (mark, lines)  # one footnote per marker
    return lines[0][2:]
