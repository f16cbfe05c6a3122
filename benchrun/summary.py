"""summary.csv / summary.json: one flat row per job, read from result.json files only."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .report.data import Job, metric, task_tally, value_of
from .report.view import spread
from .results import atomic_write_text, find_results, load_result

SUMMARY_STATS = ("mean", "p50", "p90", "p99")
SUMMARY_METRICS = ("ttft_ms", "ttfa_ms", "itl_ms", "chunk_gap_ms", "tpot_ms", "e2e_ms", "decode_tok_s",
                   "prefill_tok_s", "connect_ms")
CI_KEYS = ("ttft_ms.p50", "decode_tok_s.hmean", "output_throughput_tok_s")
SCALARS = ("output_throughput_tok_s", "request_throughput_rps", "requests_ok", "requests_failed",
           "requests_truncated", "requests_cut_at_max_tokens", "output_tokens", "input_tokens", "wall_s")


def summary_row(res: dict, job_dir: Path) -> dict:
    m = res.get("metrics", {})
    server = res.get("server") or {}
    row = {
        "job": job_dir.name, "status": res.get("status"), "error": res.get("error"),
        "model": res["model"]["name"], "backend": server.get("backend"),
        "concurrency": res.get("concurrency"), "workload": res["workload"]["name"],
        "hardware": (res.get("hardware") or {}).get("name"), "repeats": res.get("repeats", 1),
        "server_pid": server.get("pid"), "model_sha256": res["model"].get("sha256"),
    }
    for name in SUMMARY_METRICS:
        for stat in SUMMARY_STATS:
            row[f"{name}_{stat}"] = (m.get(name) or {}).get(stat)
    # The decode speed the report shows: harmonic mean over requests (1000 / mean TPOT), which one
    # burst-delivered reply cannot blow up; decode_tok_s_mean above is kept for old readers.
    row["decode_tok_s_hmean"] = value_of(res, "decode_tok_s.hmean")
    for name in SCALARS:
        row[name] = m.get(name)
    st = res.get("server_timings", {})
    row["server_predicted_per_second_mean"] = (st.get("predicted_per_second") or {}).get("mean")
    row["server_prompt_per_second_mean"] = (st.get("prompt_per_second") or {}).get("mean")
    # `wall_s` above is metrics.wall_s: the SUM over all repeats (kept under its old name);
    # wall_s_total says so in its name, and the report and diff show wall_s_per_repeat.
    row["wall_s_total"] = m.get("wall_s")
    row["wall_s_per_repeat"] = value_of(res, "wall_s")
    # Fields other parts may add (absent in older result.json files: left empty, never guessed).
    job = Job(job_dir, res)
    for key in CI_KEYS:  # stored repeats_ci95, else computed from repeat_metrics; empty for 1 repeat
        c = spread(job, metric(key)) or (None, None)
        flat = key.replace(".", "_")
        row[f"{flat}_ci95_low"], row[f"{flat}_ci95_high"] = c
    gp = res.get("goodput") or {}
    row["goodput_share"], row["goodput_rate_rps"] = gp.get("share"), gp.get("rate_rps")
    sm = res.get("server_metrics") or {}  # /metrics counter deltas (issue 3)
    order = res.get("order") or {}
    row["order"], row["round"] = order.get("mode"), order.get("round")
    row["server_metrics_predicted_tok_s"] = sm.get("predicted_tok_s")
    row["server_metrics_requests_deferred_peak"] = (sm.get("peaks") or {}).get("requests_deferred")
    row["token_count_mismatches"] = m.get("token_count_mismatches")
    conns = m.get("connections") or {}
    row["connections_new"], row["connections_reused"] = conns.get("new"), conns.get("reused")
    # "HTTP 400 exceed_context_size_error x2; read timeout x1" (absent in older results)
    row["failure_causes"] = "; ".join(f"{f.get('cause')} x{f.get('count')}" for f in m.get("failures") or []) or None
    mem = (res.get("server") or {}).get("memory") or {}
    row["memory_kind"], row["memory_peak_mib"], row["memory_idle_mib"] = mem.get("kind"), mem.get("peak_mib"), mem.get("idle_mib")
    en = res.get("energy") or {}
    row["energy_joules"], row["tokens_per_joule"] = en.get("joules"), en.get("tokens_per_joule")
    passed, judged = task_tally(res)
    row["tasks_judged"], row["tasks_passed"] = judged, passed
    return row


def write_summary(root: Path) -> list[dict]:
    """(Re)write summary.csv and summary.json in `root` from every result.json below it."""
    rows = [summary_row(load_result(p), p.parent) for p in find_results(root)]
    if rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(root / "summary.csv", buf.getvalue())
        atomic_write_text(root / "summary.json", json.dumps(rows, indent=2) + "\n")
    return rows
