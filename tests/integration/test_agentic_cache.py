"""The agents' prompt cache on a real llama.cpp server (the tiny model, embedded wheel): a long
session (workload=agentic_long at a small depth) with cache_prompt on and off, with as many
agents as slots and with twice as many. From the server's own timings: with slots enough every
later turn reuses its history; with more agents than slots (and llama.cpp's host-memory prompt
cache off, model.cache_ram_mib=0, so an evicted slot's prompt is gone) later turns miss, and
result.json and report.md say it is because agents outnumbered slots; with cache_prompt off every
later turn prefills everything. The source is counted in the server's tokens."""
from __future__ import annotations

import json

import pytest
from support import output_dir_of

from benchrun.workloads.agentic_cache import OFF, SLOTS


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_more_agents_than_slots_miss_the_cache_and_the_report_says_why(cli):
    proc, cwd = cli("-m", "model=tiny", "model.parallel=2", "model.cache_ram_mib=0", "workload=agentic_long",
                    "workload.depth=1024", "workload.max_tokens_cap=8", "workload.cache_prompt=true,false",
                    "concurrency=2,4", "telemetry.enabled=false", timeout=540)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    jobs = {(j["workload"]["cache_prompt"], j["concurrency"]): j
            for j in (json.loads(p.read_text()) for p in sorted(out.glob("*/result.json")))}
    assert set(jobs) == {(True, 2), (True, 4), (False, 2), (False, 4)}
    for (_on, c), j in jobs.items():
        assert j["status"] == "ok", j["error"]
        ctx = j["workload"]["context"]
        assert ctx["estimated"] is False and ctx["need_tokens"] > 1024  # the server's tokens, depth included
        t = j["workload"]["cache_turns"]
        assert t["slots"] == 2 and t["agents_in_flight"] == c and [r["turn"] for r in t["turns"]] == [1, 2, 3, 4]
        assert t["judged"] == 3 * c  # every agent's turns 2-4
        assert t["turns"][-1]["prompt_tokens_mean"] > 1024  # the context grew past the depth of source
        for task in j["tasks"]:  # per agent: the server's cache_n and prompt_n for every turn
            assert [r["turn"] for r in task["cache"]] == [1, 2, 3, 4]
            assert all(r["cache_n"] is not None and r["prompt_n"] > 0 for r in task["cache"])
    hit = jobs[(True, 2)]["workload"]["cache_turns"]
    assert hit["misses"] == 0 and all(r["cache_share"] > 0.5 for r in hit["turns"][1:]), hit
    crowded = jobs[(True, 4)]["workload"]["cache_turns"]
    assert crowded["misses"] > 0 and set(crowded["miss_reasons"]) == {SLOTS}, crowded
    assert "4 agents outnumbered 2 slots" in crowded["note"]
    assert crowded["turns"][-1]["cache_share"] < hit["turns"][-1]["cache_share"]
    for c in (2, 4):
        off = jobs[(False, c)]["workload"]["cache_turns"]
        assert off["misses"] == 3 * c and set(off["miss_reasons"]) == {OFF}
        assert all(r["cache_share"] < 0.5 for r in off["turns"][1:])
    md = (out / "report.md").read_text()
    assert "## Prompt cache per turn" in md and "| tiny | C4 | 4 / 2 | 4 |" in md and "| tiny | C2, cache off |" in md
    assert "because 4 agents outnumbered 2 slots (model.parallel=2)" in md and "because cache_prompt was off" in md
