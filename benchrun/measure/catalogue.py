"""The metric catalogue: every metric benchrun reports, defined once, in one table (CATALOGUE).

Contract. Each `MetricDef` says what the metric is (key in result.json `metrics`, label, unit,
which way is better, display format), how it is computed (`kind` and `fn`: a pure per-request
function from metrics.py, or a run-level one over the run's records), and where it goes
(`flags`, `headline`). Everything else reads this table and keeps no list of its own:
compute_metrics (here), repeats_ci95 (stats.py), summary.csv (report/summary.py), the report
(report/data.py, view, compare, findings, markdown, charts), `benchrun diff` / --fail-on and
calibration, the CLI status line (those through views.py: the headline and reading a result by
key), and the `metrics` part of the result.json schema
(metrics_schema, merged in by results/__init__.py). So a new metric is added by adding one entry here
(plus its pure function in metrics.py when it needs a new one). A report section still picks
which of these numbers it shows, and in what words; what each number is comes from here.

The table's order is the order of result.json `metrics`, of summary.csv's columns and of the
headline (report and diff rows). Reading a result dict (`value`) is defined beside the views
(views.py), so a key means the same number everywhere: in the report, the diff, summary.csv
and the status line.
The style follows NVIDIA AIPerf's metrics package (each metric declares its tag, header, unit
and flags; per-record vs aggregate metrics), as a plain table rather than one class per metric."""
from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Optional

from benchrun.load.records import NOT_SENT, RequestRecord
from benchrun.measure import metrics as M
from benchrun.measure.failures import failures_by_cause
from benchrun.measure.summaries import summarize


class Kind(enum.Enum):
    REQUEST = "request"  # one value per request (None when undefined), summarised over requests
    TOKENS = "tokens"    # a list per request (ITL gaps), pooled; the request is the resampling unit
    RUN = "run"          # one value per run, from the run's records (counts, throughput)
    RESULT = "result"    # read from elsewhere in result.json (memory, energy, goodput, quality)


class Flag(enum.Flag):
    NONE = 0
    CSV = enum.auto()        # summary.csv columns: <key>_<stat> for SUMMARY_STATS, or <key> for a run value
    CI = enum.auto()         # a run value with a 95% CI across repeats (summaries always get them)
    DIFF = enum.auto()       # any stat of it is a --fail-on key, request-bootstrapped, calibrated
    OPEN_LOOP = enum.auto()  # computed only when requests had a schedule (load.rate_rps)
    REQUIRED = enum.auto()   # result.json's schema requires it


Better = Literal["lower", "higher"]
SUMMARY_STATS = ("mean", "p50", "p90", "p99")  # summary.csv columns of each CSV summary
CI_STATS = SUMMARY_STATS                        # repeats_ci95 entries of each summary
STATS = ("mean", "p50", "p90", "p99", "min", "max")  # stats a metric key may name


@dataclass(frozen=True)
class Shown:
    """One headline view of a metric: a stat of a summary (None for a run value), its label
    (default "<metric label> <stat>"), and its template on the CLI status line, if any."""
    stat: Optional[str] = None
    label: Optional[str] = None
    status: Optional[str] = None  # e.g. "ttft p50 {}": {} is the value with its unit


@dataclass(frozen=True)
class Run:
    """What a run-level metric sees: the measured records and the run's wall time."""
    records: list[RequestRecord]
    good: list[RequestRecord]    # succeeded and complete: the only requests in latency figures
    failed: list[RequestRecord]
    sent: list[RequestRecord]    # every request that went out, failed ones too
    wall_s: float  # the whole measured span: every repeat's wall time, summed (metrics.wall_s is this / repeats)
    repeats: int = 1  # how many repeats' records these are (pooled metrics: all of them)


@dataclass(frozen=True)
class MetricDef:
    key: str  # result.json metrics key ("ttft_ms"); for RESULT, the dotted key ("memory.peak_mib")
    label: str
    unit: str
    better: Optional[Better]  # None: not a figure of merit (counts, tallies)
    kind: Kind
    # REQUEST: f(RequestRecord) -> float | None; TOKENS: f(RequestRecord) -> list[float];
    # RUN: f(Run) -> its JSON value; RESULT: f(result dict) -> a number or None. (One field for
    # four signatures: the table stays one row per metric; compute_metrics calls by kind.)
    fn: Callable[[Any], Any]
    fmt: str = "{:.1f}"
    flags: Flag = Flag.NONE
    headline: tuple[Shown, ...] = ()
    over: Literal["good", "sent"] = "good"  # which requests a REQUEST/TOKENS metric summarises
    reciprocal_of: Optional[tuple[str, float]] = None  # its "hmean" is k / mean of that metric
    csv_ci: tuple[str, ...] = ()  # summary.csv CI columns: these stats ("" for a run value)
    read: Optional[Callable[[dict[str, Any]], Any]] = None  # how a report reads it, when not metrics[key]
    schema: Optional[dict[str, Any]] = None  # RUN: its JSON schema in result.json (summaries: $defs/summary)
    doc: str = ""

    @property
    def summarised(self) -> bool:
        return self.kind in (Kind.REQUEST, Kind.TOKENS)


# --- result.json readers (RESULT metrics, and wall_s per repeat) -----------------------------

def task_tally(res: Optional[dict[str, Any]]) -> tuple[int, int]:
    """(passed, judged) over a result's tasks that had quality checks; (0, 0) for no result."""
    judged = [t.get("passed") for t in (res or {}).get("tasks") or [] if t.get("passed") is not None]
    return sum(1 for p in judged if p), len(judged)


def _pass_rate(res: dict[str, Any]) -> Optional[float]:
    passed, judged = task_tally(res)
    return passed / judged if judged else None


def _wall_per_repeat(res: dict[str, Any]) -> Optional[float]:
    """One repeat's wall time. Since schema_version 2 that is metrics.wall_s itself; version 1
    stored the SUM over repeats there (kept readable: the mean of its repeats)."""
    m: dict[str, Any] = res.get("metrics") or {}
    if (res.get("schema_version") or 1) >= 2:
        wall: Optional[float] = m.get("wall_s") or None  # 0: nothing ran
        return wall
    reps: list[float] = [r.get("wall_s") for r in res.get("repeat_metrics") or [] if r.get("wall_s")]
    if reps:
        return sum(reps) / len(reps)
    return float(m["wall_s"] / max(1, res.get("repeats") or 1)) if m.get("wall_s") else None  # 0: nothing ran


def _at(*path: str) -> Callable[[dict[str, Any]], Any]:
    def read(res: dict[str, Any]) -> Any:
        node: Any = res
        for p in path:
            node = (node or {}).get(p) if isinstance(node, dict) else None
        return node
    return read


_INT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NUM: dict[str, Any] = {"$ref": "#/$defs/num"}
_MS, _TOK_S = "ms", "tok/s"

CATALOGUE: tuple[MetricDef, ...] = (
    # -- per request, summarised over good requests ---------------------------------------------
    MetricDef("ttft_ms", "TTFT", _MS, "lower", Kind.REQUEST, M.ttft_ms,
              flags=Flag.CSV | Flag.DIFF | Flag.REQUIRED, csv_ci=("p50",),
              headline=(Shown("p50", status="ttft p50 {}"), Shown("p90"))),
    MetricDef("ttfa_ms", "TTFA", _MS, "lower", Kind.REQUEST, M.ttfa_ms, flags=Flag.CSV | Flag.DIFF,
              headline=(Shown("p50", "TTFA p50 (first answer token)"),)),
    MetricDef("itl_ms", "ITL", _MS, "lower", Kind.TOKENS, M.itl_ms, fmt="{:.2f}",
              flags=Flag.CSV | Flag.DIFF | Flag.REQUIRED, headline=(Shown("p50"), Shown("p99")),
              doc="per token: an event bringing k tokens a gap g after the last gives k samples of g/k "
                  "(docs/measurement.md)"),
    MetricDef("chunk_gap_ms", "Gap between token events", _MS, "lower", Kind.TOKENS, M.chunk_gap_ms,
              flags=Flag.CSV, doc="gaps between consecutive token events, unsplit"),
    MetricDef("tpot_ms", "TPOT", _MS, "lower", Kind.REQUEST, M.tpot_ms, fmt="{:.2f}",
              flags=Flag.CSV | Flag.DIFF | Flag.REQUIRED, headline=(Shown("mean"),)),
    MetricDef("e2e_ms", "E2E latency", _MS, "lower", Kind.REQUEST, M.e2e_ms,
              flags=Flag.CSV | Flag.DIFF | Flag.REQUIRED, headline=(Shown("p50"),)),
    MetricDef("decode_tok_s", "Decode speed per request", _TOK_S, "higher", Kind.REQUEST, M.decode_tok_s,
              flags=Flag.CSV | Flag.DIFF | Flag.REQUIRED, reciprocal_of=("tpot_ms", 1000.0), csv_ci=("hmean",),
              headline=(Shown("hmean", "Decode speed per request (harmonic mean)", status="decode {}"),)),
    MetricDef("prefill_tok_s", "Prefill speed per request", _TOK_S, "higher", Kind.REQUEST, M.prefill_tok_s,
              flags=Flag.CSV | Flag.DIFF, headline=(Shown("mean", "Prefill speed per request"),)),
    MetricDef("tokens_per_event", "Tokens per SSE event", "", None, Kind.REQUEST, M.tokens_per_event,
              fmt="{:.2f}"),
    MetricDef("connect_ms", "Connection setup", _MS, "lower", Kind.REQUEST, M.connect_ms, over="sent",
              flags=Flag.CSV, doc="setup of new connections (DNS + TCP + TLS)"),
    MetricDef("queue_ms", "Wait before prefill", _MS, "lower", Kind.REQUEST, M.queue_ms,
              flags=Flag.CSV | Flag.DIFF,
              doc="TTFT less the server's prompt_ms: slot queueing (concurrency above model.parallel), "
                  "network and tokenizing"),
    MetricDef("lateness_ms", "Lateness against the schedule", _MS, "lower", Kind.REQUEST, M.lateness_ms,
              over="sent", flags=Flag.OPEN_LOOP),
    MetricDef("ttft_from_schedule_ms", "TTFT from the schedule", _MS, "lower", Kind.REQUEST,
              M.ttft_from_schedule_ms, flags=Flag.OPEN_LOOP),
    MetricDef("e2e_from_schedule_ms", "E2E latency from the schedule", _MS, "lower", Kind.REQUEST,
              M.e2e_from_schedule_ms, flags=Flag.OPEN_LOOP),
    # -- per run ----------------------------------------------------------------------------------
    MetricDef("output_throughput_tok_s", "Aggregate output throughput", _TOK_S, "higher", Kind.RUN,
              lambda run: (_out_tokens(run) / run.wall_s if run.wall_s > 0 else None),
              flags=Flag.CSV | Flag.CI | Flag.REQUIRED, csv_ci=("",), schema=_NUM,
              headline=(Shown(status="{} total"),)),
    MetricDef("request_throughput_rps", "Request throughput", "req/s", "higher", Kind.RUN,
              lambda run: len(run.good) / run.wall_s if run.wall_s > 0 else None, fmt="{:.2f}",
              flags=Flag.CSV | Flag.CI, schema=_NUM, headline=(Shown(),)),
    MetricDef("requests_ok", "Requests ok", "", None, Kind.RUN, lambda run: len(run.good),
              flags=Flag.CSV | Flag.REQUIRED, schema=_INT),
    MetricDef("requests_failed", "Requests failed", "", None, Kind.RUN, lambda run: len(run.failed),
              flags=Flag.CSV | Flag.REQUIRED, schema=_INT),
    MetricDef("requests_truncated", "Requests truncated", "", None, Kind.RUN,
              lambda run: sum(1 for r in run.records if r.ok and M.truncated(r)), flags=Flag.CSV, schema=_INT),
    MetricDef("requests_cut_at_max_tokens", "Replies cut at max_tokens", "", None, Kind.RUN,
              lambda run: sum(1 for r in run.good if M.cut_at_max_tokens(r)), flags=Flag.CSV, schema=_INT),
    MetricDef("output_tokens", "Output tokens", "", None, Kind.RUN, lambda run: _out_tokens(run),
              flags=Flag.CSV | Flag.REQUIRED, schema=_INT),
    MetricDef("input_tokens", "Input tokens", "", None, Kind.RUN,
              lambda run: sum(M.input_tokens(r) or 0 for r in run.good), flags=Flag.CSV, schema=_INT),
    MetricDef("wall_s", "Total time per repeat", "s", "lower", Kind.RUN, lambda run: run.wall_s / run.repeats,
              fmt="{:.2f}", flags=Flag.CSV | Flag.CI | Flag.REQUIRED, read=_wall_per_repeat, headline=(Shown(),),
              schema={"type": "number", "minimum": 0}, doc="the mean over repeats of one repeat's wall time"),
    MetricDef("wall_s_total", "Total time, all repeats", "s", None, Kind.RUN, lambda run: run.wall_s,
              fmt="{:.2f}", schema={"type": "number", "minimum": 0},  # summary.csv: wall_s_total (report/summary.py)
              doc="every repeat's wall time, summed: the span the throughputs divide by"),
    MetricDef("token_count_mismatches", "Token count mismatches", "", None, Kind.RUN,
              lambda run: sum(1 for r in run.good if M.token_count_mismatch(r)), schema=_INT),
    MetricDef("token_count_sources", "Token count sources", "", None, Kind.RUN,
              lambda run: _tally(M.token_count_source(r) or "none" for r in run.good),
              schema={"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                      "propertyNames": {"enum": ["timings", "logprobs", "events", "spread", "none"]}}),
    MetricDef("connections", "Connections", "", None, Kind.RUN,
              lambda run: {"new": sum(1 for r in run.sent if r.connection == "new"),
                           "reused": sum(1 for r in run.sent if r.connection == "reused"),
                           "retried": sum(1 for r in run.sent if r.retried)},
              schema={"type": "object", "required": ["new", "reused"],
                      "properties": {"new": _INT, "reused": _INT, "retried": _INT}}),
    MetricDef("failures", "Failures by cause", "", None, Kind.RUN, lambda run: failures_by_cause(run.records),
              schema={"type": "array", "items": {
                  "type": "object", "required": ["cause", "count", "message", "fix"],
                  "properties": {
                      "cause": {"type": "string"}, "count": {"type": "integer", "minimum": 1},
                      "status": {"type": ["integer", "null"]}, "type": {"type": ["string", "null"]},
                      "message": {"type": "string"}, "fix": {"type": "string"},
                      "n_prompt_tokens": {"type": "integer"}, "n_ctx": {"type": "integer"}}}}),
    MetricDef("cache_n_total", "Prompt tokens from cache", "", None, Kind.RUN,
              lambda run: (sum(c[0] for c in cs)
                           if (cs := [c for r in run.good if (c := M.cache_counts(r))]) else None),
              schema={"type": ["integer", "null"], "minimum": 0}, doc="null: the server does not report it"),
    MetricDef("cache_hit_share", "Prompt cache hits", "", None, Kind.RUN, lambda run: M.cache_hit_share(run.good),
              fmt="{:.0%}", schema={"type": ["number", "null"], "minimum": 0, "maximum": 1},
              doc="prompt tokens llama.cpp took from a slot's KV cache (timings.cache_n) over all prompt "
                  "tokens (cache_n + prompt_n); null: the server does not report it"),
    # -- elsewhere in result.json ---------------------------------------------------------------
    MetricDef("goodput.share", "Goodput (share meeting SLOs)", "", "higher", Kind.RESULT, _at("goodput", "share"),
              fmt="{:.0%}", headline=(Shown(),)),
    MetricDef("memory.peak_mib", "Peak memory", "MiB", "lower", Kind.RESULT, _at("server", "memory", "peak_mib"),
              fmt="{:.0f}", headline=(Shown(),)),
    MetricDef("energy.tokens_per_joule", "Tokens per joule", "tok/J", "higher", Kind.RESULT,
              _at("energy", "tokens_per_joule"), fmt="{:.2f}", headline=(Shown(),)),
    MetricDef("tasks.pass_rate", "Quality checks passed", "", "higher", Kind.RESULT, _pass_rate,
              fmt="{:.0%}", headline=(Shown(),)),
)


def _out_tokens(run: Run) -> int:
    return sum(M.output_tokens(r) or 0 for r in run.good)


def _tally(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


BY_NAME: dict[str, MetricDef] = {d.key: d for d in CATALOGUE}


def with_flag(flag: Flag) -> tuple[MetricDef, ...]:
    return tuple(d for d in CATALOGUE if flag in d.flags)


# --- computing: one metrics dict per run, and the result.json schema of it -------------------

def per_request() -> dict[str, Callable[[RequestRecord], Optional[float]]]:
    """Every one-value-per-request metric, by key."""
    return {d.key: d.fn for d in CATALOGUE if d.kind is Kind.REQUEST}


def compute_metrics(records: list[RequestRecord], wall_ns: int, repeats: int = 1) -> dict[str, Any]:
    """result.json `metrics` for measured runs (`repeats` of them, their walls summed in
    wall_ns): every REQUEST/TOKENS/RUN entry, in catalogue order (OPEN_LOOP ones only when
    some request had a schedule)."""
    good = [r for r in records if M.is_good(r)]
    # Connection setup and lateness count every request that went out (failed ones too: a
    # refused connect is still a connection cost, and lateness is the scheduler's).
    run = Run(records, good, [r for r in records if not r.ok], [r for r in records if r.error != NOT_SENT],
              wall_ns / 1e9, max(1, repeats))
    open_loop = any(r.scheduled_ns is not None for r in records)
    out: dict[str, Any] = {}  # key: a Summary (REQUEST, TOKENS) or the RUN metric's value
    for d in CATALOGUE:
        if d.kind is Kind.RESULT or (Flag.OPEN_LOOP in d.flags and not open_loop):
            continue
        over = run.good if d.over == "good" else run.sent
        if d.kind is Kind.REQUEST:
            out[d.key] = summarize(d.fn(r) for r in over)
        elif d.kind is Kind.TOKENS:
            out[d.key] = summarize(x for r in over for x in d.fn(r))
        else:
            out[d.key] = d.fn(run)
    return out


def metrics_schema() -> dict[str, Any]:
    """The JSON schema of result.json `metrics` (results/__init__.py puts it into the shipped schema)."""
    props = {}
    for d in CATALOGUE:
        if d.kind is Kind.RESULT:
            continue
        s = dict({"$ref": "#/$defs/summary"} if d.summarised else d.schema or {})
        if d.doc:
            s = {"description": d.doc, **s}
        props[d.key] = s
    return {"type": "object", "required": [d.key for d in with_flag(Flag.REQUIRED)], "properties": props}
