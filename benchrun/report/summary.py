"""summary.csv / summary.json: one flat row per job, read from result.json files only."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from benchrun.analysis.jobs import Job, metric, task_tally, value_of
from benchrun.measure.catalogue import SUMMARY_STATS, Flag, with_flag
from benchrun.report.view import spread
from benchrun.results import atomic_write_text, find_results, load_result
from benchrun.results.parts import read_parts

# The catalogue's Flag.CSV entries, in its order: summaries give <key>_<stat> columns, run values
# one <key> column; csv_ci names the keys that get CI columns.
SUMMARY_METRICS = tuple(d.key for d in with_flag(Flag.CSV) if d.summarised)
HMEAN_METRICS = tuple(d.key for d in with_flag(Flag.CSV) if d.summarised and d.reciprocal_of)
CI_KEYS = tuple(f"{d.key}.{s}" if s else d.key for d in with_flag(Flag.CSV) for s in d.csv_ci)
SCALARS = tuple(d.key for d in with_flag(Flag.CSV) if not d.summarised)


def summary_row(res: dict, job_dir: Path) -> dict:
    p = read_parts(res)
    m = p.metrics
    server = res.get("server") or {}
    row = {
        "job": job_dir.name, "status": res.get("status"), "error": res.get("error"),
        "model": res["model"]["name"], "backend": server.get("backend"),
        "concurrency": res.get("concurrency"), "workload": res["workload"]["name"],
        "hardware": p.hardware_name, "repeats": res.get("repeats", 1),
        "server_pid": server.get("pid"), "model_sha256": res["model"].get("sha256"),
    }
    for name in SUMMARY_METRICS:
        for stat in SUMMARY_STATS:
            row[f"{name}_{stat}"] = p.metric(name, stat)
    # The decode speed the report shows: harmonic mean over requests (1000 / mean TPOT), which one
    # burst-delivered reply cannot blow up; decode_tok_s_mean above is kept for old readers.
    for name in HMEAN_METRICS:
        row[f"{name}_hmean"] = value_of(res, f"{name}.hmean")
    for name in SCALARS:  # as the catalogue reads them: wall_s is one repeat's, in every schema version
        row[name] = value_of(res, name)
    row["server_predicted_per_second_mean"] = p.server_timing("predicted_per_second")
    row["server_prompt_per_second_mean"] = p.server_timing("prompt_per_second")
    # One repeat's wall time and the sum, also from schema_version 1 results, whose
    # metrics.wall_s was the sum.
    row["wall_s_total"] = m.get("wall_s_total", m.get("wall_s") if (res.get("schema_version") or 1) < 2 else None)
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
    row["server_metrics_requests_deferred_peak"] = p.server_metric_peaks.get("requests_deferred")
    row["token_count_mismatches"] = m.get("token_count_mismatches")
    conns = m.get("connections") or {}
    row["connections_new"], row["connections_reused"] = conns.get("new"), conns.get("reused")
    # "HTTP 400 exceed_context_size_error x2; read timeout x1" (absent in older results)
    row["failure_causes"] = "; ".join(f"{f.get('cause')} x{f.get('count')}" for f in m.get("failures") or []) or None
    mem = p.memory
    row["memory_kind"], row["memory_peak_mib"], row["memory_idle_mib"] = mem.kind, mem.peak_mib, mem.idle_mib
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
