"""workload=depth on the real embedded llama.cpp server (SmolLM2): every prompt is exactly depth +
its question in the server's own tokens, nothing comes from the prompt cache, tg agrees with
llama.cpp's own timings, and decode is slower deep in the context. The report gets its Depth
table and chart. The same sweep on a real llama-server is test_llama_bench.py's (beside
llama-bench), which checks the same figures there."""
from __future__ import annotations

import json

import pytest
from support import output_dir_of


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_depth_sweep_on_a_real_server(cli, smollm2_path):
    backend, deep = "embedded", 2048
    proc, cwd = cli("-m", "model=smollm2", "workload=depth", f"workload.depth=0,{deep}", "workload.requests=2",
                    "workload.output_tokens=32", "model.threads=1", "telemetry.enabled=false", timeout=540)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {j["workload"]["depth"]: j for j in (json.loads(p.read_text()) for p in sorted(out.glob("*/result.json")))}
    assert set(jobs) == {0, deep}
    for depth, j in jobs.items():
        assert j["status"] == "ok", j["error"]
        assert j["server"]["backend"] == backend and j["workload"]["prompt_tokens_method"] == "tokenize"
        st, m = j["server_timings"], j["metrics"]
        # Exactly depth + the templated question per prompt, in the server's own count.
        assert m["input_tokens"] == 2 * j["workload"]["prompt_tokens"] and j["workload"]["prompt_tokens"] > depth
        assert m["cache_hit_share"] == 0 and st["cache_n"]["max"] == 0  # unique contexts: no cache hit
        tg, tg_server = m["decode_tok_s"]["mean"], st["predicted_per_second"]["mean"]
        assert abs(tg / tg_server - 1) < 0.15, (depth, tg, tg_server)
    assert jobs[deep]["metrics"]["decode_tok_s"]["mean"] < jobs[0]["metrics"]["decode_tok_s"]["mean"]
    assert jobs[deep]["server_timings"]["predicted_per_second"]["mean"] < jobs[0]["server_timings"]["predicted_per_second"]["mean"]
    md = (out / "report.md").read_text()
    assert "## Depth" in md and f"| smollm2 | C1 | {deep:,} |" in md and (out / "charts" / "depth.png").is_file()
