"""summary.csv / summary.json: one flat row per job, read from result.json files only."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .results import atomic_write_text, find_results, read_result

SUMMARY_STATS = ("mean", "p50", "p90", "p99")
SUMMARY_METRICS = ("ttft_ms", "ttfa_ms", "itl_ms", "tpot_ms", "e2e_ms", "decode_tok_s", "prefill_tok_s")
SCALARS = ("output_throughput_tok_s", "request_throughput_rps", "requests_ok", "requests_failed",
           "requests_truncated", "output_tokens", "input_tokens", "wall_s")


def summary_row(res: dict, job_dir: Path) -> dict:
    m = res.get("metrics", {})
    row = {
        "job": job_dir.name, "status": res.get("status"), "error": res.get("error"),
        "model": res["model"]["name"], "backend": res["server"]["backend"],
        "concurrency": res.get("concurrency"), "workload": res["workload"]["name"],
        "hardware": res["hardware"]["name"], "repeats": res.get("repeats", 1),
        "server_pid": res["server"].get("pid"), "model_sha256": res["model"].get("sha256"),
    }
    for name in SUMMARY_METRICS:
        for stat in SUMMARY_STATS:
            row[f"{name}_{stat}"] = (m.get(name) or {}).get(stat)
    for name in SCALARS:
        row[name] = m.get(name)
    st = res.get("server_timings", {})
    row["server_predicted_per_second_mean"] = (st.get("predicted_per_second") or {}).get("mean")
    row["server_prompt_per_second_mean"] = (st.get("prompt_per_second") or {}).get("mean")
    return row


def write_summary(root: Path) -> list[dict]:
    """(Re)write summary.csv and summary.json in `root` from every result.json below it."""
    rows = [summary_row(read_result(p), p.parent) for p in find_results(root)]
    if rows:
        fields = list(rows[0])
        lines: list[str] = []

        class _Sink:
            def write(self, s: str) -> None:
                lines.append(s)

        w = csv.DictWriter(_Sink(), fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(root / "summary.csv", "".join(lines))
        atomic_write_text(root / "summary.json", json.dumps(rows, indent=2) + "\n")
    return rows
