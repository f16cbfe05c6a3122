"""The metric catalogue (benchrun/measure/catalogue.py) is the one list of metrics: result.json `metrics`,
its schema, summary.csv, the headline (report, diff), repeats_ci95 and the status line all
follow it. Pure: hand-built records, no server."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.handmade import make_job

from benchrun.load.records import RequestRecord
from benchrun.measure import catalogue as C
from benchrun.measure import views as V
from benchrun.measure.catalogue import compute_metrics
from benchrun.measure.stats import repeats_ci95
from benchrun.results import result_schema, validate_result


def _records(scheduled: bool) -> list[RequestRecord]:
    sched = 0 if scheduled else None
    ok = RequestRecord(id=1, scheduled_ns=sched, start_ns=2_000_000, end_ns=40_000_000,
                       event_ns=[5_000_000, 6_000_000, 8_000_000, 8_100_000], event_kinds="cccu", status=200,
                       usage={"completion_tokens": 3, "prompt_tokens": 12}, connection="new", connect_ns=400_000,
                       timings={"prompt_ms": 3.0, "cache_n": 4})
    bad = RequestRecord(id=2, scheduled_ns=sched, start_ns=0, end_ns=1000, status=500, error="HTTP 500: boom")
    return [ok, bad]


def _computed() -> list[C.MetricDef]:
    return [d for d in C.CATALOGUE if d.kind is not C.Kind.RESULT]


def test_compute_metrics_writes_exactly_the_catalogue_in_its_order():
    closed = compute_metrics(_records(False), 10**9)
    assert list(closed) == [d.key for d in _computed() if C.Flag.OPEN_LOOP not in d.flags]
    opened = compute_metrics(_records(True), 10**9)
    assert list(opened) == [d.key for d in _computed()]
    for d in _computed():
        if d.summarised:
            assert set(opened[d.key]) >= {"n", *C.STATS}, d.key


def test_schema_metric_keys_are_the_catalogue_keys():
    part = result_schema()["properties"]["metrics"]
    assert set(part["properties"]) == {d.key for d in _computed()}
    assert set(part["required"]) == {d.key for d in C.with_flag(C.Flag.REQUIRED)}
    for d in _computed():
        s = part["properties"][d.key]
        if d.summarised:
            assert s["$ref"] == "#/$defs/summary", d.key
        else:
            assert d.schema is not None, d.key


def test_schema_rejects_a_wrongly_typed_catalogue_metric():
    m = compute_metrics(_records(True), 10**9)
    res = {"schema_version": 1, "status": "ok", "error": None, "run_id": "r",
           "job": {"num": 0, "name": "j", "started_at": "t", "finished_at": None},
           "model": {"name": "m", "path": None, "sha256": None},
           "server": {"backend": "external", "command": [], "pid": None, "build_info": None, "startup_s": None},
           "concurrency": 1, "workload": {"name": "w"}, "hardware": {"name": "h"}, "metrics": m,
           "server_timings": {"prompt_per_second": m["ttft_ms"], "predicted_per_second": m["ttft_ms"]}}
    validate_result(res)
    for key in ("requests_truncated", "cache_n_total", "lateness_ms"):  # new to the schema: typed now
        with pytest.raises(ValueError, match=f"metrics/{key}"):
            validate_result({**res, "metrics": {**m, key: "many"}})


def test_table_is_well_formed():
    keys = [d.key for d in C.CATALOGUE]
    assert len(keys) == len(set(keys))
    for d in C.CATALOGUE:
        assert dataclasses.is_dataclass(d) and d.__dataclass_params__.frozen
        assert d.fn is not None, d.key
        if d.headline or C.Flag.DIFF in d.flags:
            assert d.better in ("lower", "higher"), d.key
        if C.Flag.DIFF in d.flags:
            assert d.summarised, d.key
        for s in d.headline:
            assert (s.stat is not None) == d.summarised, d.key
    assert len(V.BY_KEY) == len(V.HEADLINE)


def test_every_view_reads_a_value_from_a_result():
    m = compute_metrics(_records(False), 10**9)
    res = {"metrics": m, "repeats": 1, "goodput": {"share": 0.5}, "server": {"memory": {"peak_mib": 100}},
           "energy": {"tokens_per_joule": 2.0}, "tasks": [{"passed": True}, {"passed": False}]}
    for v in V.HEADLINE:
        assert V.value(res, v.key) is not None, v.key
    assert V.value(res, "decode_tok_s.hmean") == pytest.approx(1000 / m["tpot_ms"]["mean"])
    assert V.value(res, "tasks.pass_rate") == 0.5
    assert [m.key for _, m in V.STATUS_LINE] == ["ttft_ms.p50", "decode_tok_s.hmean", "output_throughput_tok_s"]


def test_summary_csv_and_ci_lists_come_from_the_catalogue():
    from benchrun.measure import stats
    from benchrun.report import summary
    csv = C.with_flag(C.Flag.CSV)
    assert summary.SUMMARY_METRICS == tuple(d.key for d in csv if d.summarised)
    assert summary.SCALARS == tuple(d.key for d in csv if not d.summarised)
    assert stats.CI_SCALARS == tuple(d.key for d in C.with_flag(C.Flag.CI))
    assert "decode_tok_s.hmean" in summary.CI_KEYS


# --- queue_ms: the metric added by one catalogue entry (and its function in metrics.py) -------

def test_queue_ms_is_ttft_outside_prefill():
    from benchrun.measure.metrics import queue_ms

    ok, bad = _records(False)
    assert queue_ms(ok) == pytest.approx(5.0 - 3.0)  # first token at 5 ms, llama.cpp prefill 3 ms
    assert queue_ms(bad) is None
    assert queue_ms(dataclasses.replace(ok, timings=None)) is None  # a server without timings


def _job_with_prefill(root, num: int, c: int, ttft_ms: float, prompt_ms: float = 20.0):
    """A hand-made job (test_report_handmade.make_job) whose records carry llama.cpp's
    timings.prompt_ms, its result.json recomputed from them."""
    import json

    from benchrun.load.records import read_records
    from benchrun.results import write_result

    d = make_job(root, num, "m", c, ttft_ms, 10, repeats=3, n=30, seed=200 + num)
    recs = read_records(d / "requests.jsonl")
    for r in recs:
        r.timings = {**(r.timings or {}), "prompt_ms": prompt_ms}
    (d / "requests.jsonl").write_text("".join(r.to_json() + "\n" for r in recs))
    res = json.loads((d / "result.json").read_text())
    walls = [int(rm["wall_s"] * 1e9) for rm in res["repeat_metrics"]]
    runs = [[r for r in recs if r.repeat == k] for k in range(len(walls))]
    res["repeat_metrics"] = [compute_metrics(run, w) for run, w in zip(runs, walls)]
    res["metrics"] = compute_metrics(recs, sum(walls))
    write_result(d, res)
    assert json.loads((d / "result.json").read_text())["status"] == "ok"  # schema-valid
    return d


def test_queue_ms_reaches_result_summary_csv_and_diff_fail_on(tmp_path, capsys, monkeypatch):
    import csv
    import json

    from benchrun.cli import main
    from benchrun.report.summary import write_summary

    monkeypatch.setenv("BENCHRUN_RUN_ID", "test-catalogue-in-process")  # main() sets it in-process
    base, slow = tmp_path / "base", tmp_path / "slow"
    for num, c in enumerate((1, 2)):
        _job_with_prefill(base, num, c, 100.0 * c)
        _job_with_prefill(slow, num, c, 100.0 * c + 40.0)  # same prefill, 40 ms more waiting
    # result.json
    res = json.loads(next(base.rglob("result.json")).read_text())
    q = res["metrics"]["queue_ms"]
    assert q["n"] == 90 and q["p50"] == pytest.approx(80.0, rel=0.1)
    assert "queue_ms.p50" in repeats_ci95(res["repeat_metrics"])
    # summary.csv
    write_summary(base)
    rows = list(csv.DictReader((base / "summary.csv").open()))
    for stat in ("mean", "p50", "p90", "p99"):
        assert float(rows[0][f"queue_ms_{stat}"]) > 0
    # benchrun diff --fail-on (not a headline metric: compared because a rule names it)
    assert main(["diff", str(base), str(slow), "--fail-on", "queue_ms.p50:10"]) == 1
    cap = capsys.readouterr()
    assert "REGRESSION m / agentic / C1: queue_ms.p50 worse by" in cap.err, cap.err
    assert any(line.startswith("   queue_ms.p50 (ms)") and "WORSE" in line for line in cap.out.splitlines())
    assert main(["diff", str(base), str(base), "--fail-on", "queue_ms.p90:1"]) == 0


def test_wall_s_is_one_repeats_time_in_schema_2_and_old_results_still_read_so():
    recs = _records(scheduled=False)
    two = compute_metrics(recs, 10_000_000_000, repeats=2)  # two repeats, 10 s in all
    assert two["wall_s"] == 5.0 and two["wall_s_total"] == 10.0
    assert two["output_throughput_tok_s"] == compute_metrics(recs, 10_000_000_000)["output_throughput_tok_s"]
    from benchrun.report.summary import summary_row

    v2 = {"schema_version": 2, "repeats": 2, "model": {"name": "m"}, "workload": {"name": "w"},
          "metrics": {"wall_s": 5.0, "wall_s_total": 10.0}}
    v1 = {"schema_version": 1, "repeats": 2, "model": {"name": "m"}, "workload": {"name": "w"},
          "metrics": {"wall_s": 10.0}}  # version 1 stored the sum under wall_s
    for res in (v1, v2):
        assert V.value(res, "wall_s") == 5.0
        row = summary_row(res, Path("0_m_c1"))
        assert (row["wall_s_per_repeat"], row["wall_s_total"]) == (5.0, 10.0)
