"""search=capacity end to end through the CLI, against a server whose capacity is known exactly
(support/slotserver.py: 4 slots, TTFT and TPOT rising with the streams in its slots, a FIFO
queue beyond them): the TPOT-bound, TTFT-bound and saturation-bound answers, closed loop and
open loop; an SLO missed at concurrency 1; Ctrl-C and resume=DIR. The real llama.cpp server's
search beside a grid is in test_capacity_real.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from support import output_dir_of, run_cli, slotserver, wait_for

# Per request at concurrency c <= 4: TTFT = 40 * (1 + 0.25 (c-1)) ms = 40, 50, 60, 70;
# TPOT = 20 * (1 + 0.25 (c-1)) ms = 20, 25, 30, 35; 8 tokens. Beyond 4 only the queue grows.
SLOTS = dict(slots=4, ttft_ms=40, ttft_slope=0.25, itl_ms=20, itl_slope=0.25)
COMMON = ["model=external", "model.parallel=4", "search=capacity", "search.target=0.8", "search.min_gain=0.05",
          "workload.requests=20", "workload.output_tokens=8", "telemetry.enabled=false", "report=false"]


@pytest.fixture(scope="module")
def slots_url():
    with slotserver.running(**SLOTS) as url:
        yield url


def search(url: str, cwd, *over: str, timeout: float = 240):
    cwd.mkdir(exist_ok=True)
    proc = run_cli(["-m", f"model.url={url}", *COMMON, *over], cwd, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = cwd / output_dir_of(proc.stdout)
    return json.loads((out / "capacity.json").read_text())["external"], out, proc


@pytest.mark.parametrize("slo, capacity, limit", [
    (["slo.tpot_ms=27.5", "slo.ttft_ms=10000"], 2, "tpot"),  # 25 ms at 2, 30 at 3
    (["slo.ttft_ms=65"], 3, "ttft"),  # 60 ms at 3, 70 at 4
    (["slo.ttft_ms=100000"], 4, "saturation (slots)"),  # beyond 4 slots throughput is flat
])
def test_closed_loop_capacity_is_found_exactly(slots_url, tmp_path, slo, capacity, limit):
    cap, out, proc = search(slots_url, tmp_path, *slo)
    assert (cap["capacity"], cap["unit"], cap["status"]) == (capacity, "concurrency", "done"), cap
    assert cap["limit"] == limit, cap
    # Every probe is an ordinary job with its result.json; levels above model.parallel queue.
    for p in cap["probes"]:
        res = json.loads((out / p["job"] / "result.json").read_text())
        assert res["status"] == "ok" and res["concurrency"] == p["level"]
        assert p["queueing"] == (p["level"] > 4)
    levels = [p["level"] for p in cap["probes"]]
    assert levels[:2] == [1, 2] and capacity in levels  # geometric growth from 1
    assert f"capacity of external (parallel=4): {capacity} (concurrency)" in proc.stdout
    if limit != "saturation (slots)":
        assert cap["bounds"] == [capacity, capacity + 1]  # bisected down to one step
        return
    # The report leads with the answer, its table and the knee chart; diff compares capacities.
    from benchrun.report import write_report

    written = write_report(out)
    md = written.report_md.read_text()
    assert md.index("## Capacity") < md.index("## Models Under Test")
    assert "By capacity, **external**: it serves concurrency 4" in md and (out / "charts" / "capacity.png").is_file()
    assert "| 8 | pass |" in md and "| yes |" in md  # the probe beyond the slots, marked as queueing
    diff = run_cli(["diff", str(out), str(out)], tmp_path)
    assert "capacity external: 4 -> 4 (same; limit saturation (slots) -> saturation (slots))" in diff.stdout, diff.stderr


def test_open_loop_capacity_is_the_servers_service_rate(tmp_path):
    # 2 slots, 40 ms + 7 x 20 ms per request, no slowdown: it serves 2 / 0.18 s = 11.1 requests/s;
    # faster arrivals queue, and TTFT (from the scheduled send) outgrows 100 ms.
    with slotserver.running(slots=2, ttft_ms=40, ttft_slope=0, itl_ms=20, itl_slope=0) as url:
        cap, _, _ = search(url, tmp_path, "model.parallel=2", "search.variable=load.rate", "search.start=2",
                           "search.resolution=0.15", "load.arrival=constant", "slo.ttft_ms=100")
    assert cap["unit"] == "rate" and cap["status"] == "done", cap
    assert 9.5 <= cap["capacity"] <= 12.5, cap
    assert cap["bounds"][1] is not None and cap["bounds"][1] / cap["bounds"][0] <= 1.15 + 1e-9


def test_an_slo_missed_at_concurrency_1_ends_at_once_with_its_figures(slots_url, tmp_path):
    cap, _, proc = search(slots_url, tmp_path, "slo.ttft_ms=10")  # 40 ms at concurrency 1
    assert cap["capacity"] is None and [p["level"] for p in cap["probes"]] == [1]
    assert cap["why"].startswith("below the SLO at concurrency 1: goodput 0%") and "p90 TTFT" in cap["why"]
    assert "below the SLO at concurrency 1" in proc.stdout


def test_interrupted_search_keeps_its_probes_and_resume_goes_on(slots_url, tmp_path):
    full, _, _ = search(slots_url, tmp_path / "full", "slo.ttft_ms=65")
    (tmp_path / "cut").mkdir()  # the same search, Ctrl-C once its second probe is written
    proc = subprocess.Popen([sys.executable, "-m", "benchrun", "-m", f"model.url={slots_url}", *COMMON, "slo.ttft_ms=65"],
                            cwd=tmp_path / "cut", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            # SIGINT at its default: a harness that started us in the background
                            # (nohup, `&`) hands down "ignore SIGINT" (as test_signals.py)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    root = tmp_path / "cut" / "outputs"
    wait_for(lambda: len(list(root.glob("*/1_*/result.json"))) == 1, 120, "the second probe's result")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    [sweep] = list(root.iterdir())
    cut = json.loads((sweep / "capacity.json").read_text())["external"]
    assert cut["status"] == "interrupted" and len(cut["probes"]) >= 2, cut
    again, _, proc2 = search(slots_url, tmp_path / "cut", "slo.ttft_ms=65", f"resume={sweep}")
    assert again["status"] == "done" and again["capacity"] == full["capacity"] == 3
    # The probes the cut run wrote are kept as they were; the rest are probed again. A step whose
    # verdict falls within noise is repeated, so the two runs may differ in repeats, not in levels.
    assert again["probes"][:len(cut["probes"])] == cut["probes"]
    assert {p["level"] for p in again["probes"]} == {p["level"] for p in full["probes"]}
    assert "[0_external_c1] ok: kept from the earlier run (resume)" in proc2.stdout


def test_slot_counts_are_searched_each_and_the_best_named(slots_url, tmp_path):
    cap, out, _ = search(slots_url, tmp_path, "slo.ttft_ms=65", "search.parallel=1,2", "search.max_level=4")
    assert set(cap["by_parallel"]) == {"1", "2"} and cap["best_parallel"] in (1, 2), cap
    assert cap["capacity"] == max(c["capacity"] for c in cap["by_parallel"].values()) == 3
    # Each candidate's server gets its slots and the context per slot held (ctx_size = per slot x slots).
    for p, c in cap["by_parallel"].items():
        res = json.loads((out / c["probes"][0]["job"] / "result.json").read_text())
        assert res["model"]["parallel"] == int(p) and c["parallel"] == int(p)
        assert [q["queueing"] for q in c["probes"]] == [q["level"] > int(p) for q in c["probes"]]
