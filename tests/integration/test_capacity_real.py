"""search=capacity on the real embedded llama.cpp server (the tiny preset): the search runs end
to end, its answer is consistent with its own probes (every level up to the capacity passes,
the bound above it does not), every probe is a real job of that server, and the report leads
with it. (Search vs a full grid, probes and job-seconds: benchmarks/capacity_vs_grid.py.)"""
from __future__ import annotations

import json

import pytest
from support import output_dir_of


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_capacity_search_on_the_real_server(cli):
    proc, cwd = cli("-m", "model=tiny", "search=capacity", "slo.ttft_ms=400", "search.target=0.8",
                    "search.max_level=8", "workload.requests=20", "workload.output_tokens=8",
                    "telemetry.enabled=false", timeout=540)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    cap = json.loads((out / "capacity.json").read_text())["tiny"]
    assert cap["status"] == "done" and cap["unit"] == "concurrency" and cap["parallel"] == 4, cap
    verdicts: dict[float, str] = {}
    for p in cap["probes"]:
        res = json.loads((out / p["job"] / "result.json").read_text())
        assert res["status"] == "ok" and res["server"]["backend"] == "embedded" and res["concurrency"] == p["level"]
        assert res["goodput"]["requests"] == p["requests"] == 20
        verdicts[p["level"]] = p["verdict"]
    if cap["capacity"] is None:
        assert cap["why"].startswith("below the SLO at concurrency 1")
    else:
        assert all(v == "pass" for lv, v in verdicts.items() if lv <= cap["capacity"]), verdicts
        hi = cap["bounds"][1]
        assert hi is None or verdicts[hi] in ("fail", "undecided"), (cap["bounds"], verdicts)
        assert hi is not None or cap["limit"].startswith("saturation") or cap["capacity"] == 8
    md = (out / "report.md").read_text()
    assert md.index("## Capacity") < md.index("## Summary") and (out / "charts" / "capacity.png").is_file()
