"""The metric catalogue (benchrun/catalogue.py) is the one list of metrics: result.json `metrics`,
its schema, summary.csv, the headline (report, diff), repeats_ci95 and the status line all
follow it. Pure: hand-built records, no server."""
from __future__ import annotations

import dataclasses

import pytest

from benchrun import catalogue as C
from benchrun.metrics import compute_metrics
from benchrun.records import RequestRecord
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
    assert len(C.BY_KEY) == len(C.HEADLINE)


def test_every_view_reads_a_value_from_a_result():
    m = compute_metrics(_records(False), 10**9)
    res = {"metrics": m, "repeats": 1, "goodput": {"share": 0.5}, "server": {"memory": {"peak_mib": 100}},
           "energy": {"tokens_per_joule": 2.0}, "tasks": [{"passed": True}, {"passed": False}]}
    for v in C.HEADLINE:
        assert C.value(res, v.key) is not None, v.key
    assert C.value(res, "decode_tok_s.hmean") == pytest.approx(1000 / m["tpot_ms"]["mean"])
    assert C.value(res, "tasks.pass_rate") == 0.5
    assert [m.key for _, m in C.STATUS_LINE] == ["ttft_ms.p50", "decode_tok_s.hmean", "output_throughput_tok_s"]


def test_summary_csv_and_ci_lists_come_from_the_catalogue():
    from benchrun import stats, summary

    csv = C.with_flag(C.Flag.CSV)
    assert summary.SUMMARY_METRICS == tuple(d.key for d in csv if d.summarised)
    assert summary.SCALARS == tuple(d.key for d in csv if not d.summarised)
    assert stats.CI_SCALARS == tuple(d.key for d in C.with_flag(C.Flag.CI))
    assert "decode_tok_s.hmean" in summary.CI_KEYS
