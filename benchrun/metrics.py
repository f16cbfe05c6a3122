"""Pure metric functions over RequestRecords, and their summaries.

Per-request metrics return None when undefined (a failed request, a one-token reply for ITL);
summaries only ever see successful, complete requests."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

import numpy as np

from .records import CONTENT, NOT_SENT, TOKEN_KINDS, RequestRecord

NS_PER_MS = 1e6


def token_offsets_ns(r: RequestRecord) -> list[int]:
    """Arrival offsets of the events that carry a token (content or reasoning)."""
    return [ns for ns, k in zip(r.event_ns, r.event_kinds) if k in TOKEN_KINDS]


def output_tokens(r: RequestRecord) -> Optional[int]:
    """The server's count (usage), else llama.cpp timings; never a count of words."""
    if r.usage and r.usage.get("completion_tokens") is not None:
        return int(r.usage["completion_tokens"])
    if r.timings and r.timings.get("predicted_n") is not None:
        return int(r.timings["predicted_n"])
    return None


def input_tokens(r: RequestRecord) -> Optional[int]:
    if r.usage and r.usage.get("prompt_tokens") is not None:
        return int(r.usage["prompt_tokens"])
    return None


def ttft_ms(r: RequestRecord) -> Optional[float]:
    """Send -> first token event (content or reasoning; role-only/empty chunks are not tokens)."""
    for ns, k in zip(r.event_ns, r.event_kinds):
        if k in TOKEN_KINDS:
            return ns / NS_PER_MS
    return None


def ttfa_ms(r: RequestRecord) -> Optional[float]:
    """Send -> first answer (content) token: honest TTFT for thinking models."""
    for ns, k in zip(r.event_ns, r.event_kinds):
        if k == CONTENT:
            return ns / NS_PER_MS
    return None


def itl_ms(r: RequestRecord) -> list[float]:
    """Gaps between consecutive token events."""
    t = token_offsets_ns(r)
    return [(b - a) / NS_PER_MS for a, b in zip(t, t[1:])]


def e2e_ms(r: RequestRecord) -> float:
    return (r.end_ns - r.start_ns) / NS_PER_MS


def tpot_ms(r: RequestRecord) -> Optional[float]:
    """(e2e - ttft) / (tokens - 1): mean time per output token after the first."""
    n, first = output_tokens(r), ttft_ms(r)
    if n is None or n < 2 or first is None:
        return None
    return (e2e_ms(r) - first) / (n - 1)


def decode_tok_s(r: RequestRecord) -> Optional[float]:
    t = tpot_ms(r)
    return 1000.0 / t if t else None


def prefill_tok_s(r: RequestRecord) -> Optional[float]:
    """Prompt tokens over TTFT, as the client sees it (includes queueing and network)."""
    n, first = input_tokens(r), ttft_ms(r)
    if not n or not first:
        return None
    return n / (first / 1000.0)


def lateness_ms(r: RequestRecord) -> Optional[float]:
    """Open loop: how late the request was sent against its schedule."""
    return None if r.scheduled_ns is None else (r.start_ns - r.scheduled_ns) / NS_PER_MS


def ttft_from_schedule_ms(r: RequestRecord) -> Optional[float]:
    """TTFT measured from the scheduled time: coordinated omission cannot hide here."""
    late, first = lateness_ms(r), ttft_ms(r)
    return None if late is None or first is None else late + first


def ttfa_from_schedule_ms(r: RequestRecord) -> Optional[float]:
    late, first = lateness_ms(r), ttfa_ms(r)
    return None if late is None or first is None else late + first


def e2e_from_schedule_ms(r: RequestRecord) -> Optional[float]:
    late = lateness_ms(r)
    return None if late is None else late + e2e_ms(r)


def token_events(r: RequestRecord) -> int:
    return sum(1 for k in r.event_kinds if k in TOKEN_KINDS)


def token_count_mismatch(r: RequestRecord) -> bool:
    """The client's count of token events disagrees with the server's usage."""
    n = output_tokens(r)
    return n is not None and n != token_events(r)


def truncated(r: RequestRecord) -> bool:
    """Complete, but not as long as the workload demanded."""
    return r.expected_tokens is not None and output_tokens(r) != r.expected_tokens


def is_good(r: RequestRecord) -> bool:
    """Counts in latency figures: succeeded, and not truncated."""
    return r.ok and not truncated(r)


def summarize(values: Iterable[Optional[float]]) -> dict:
    """n, mean, p50, p90, p99, min, max, stdev over the defined values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                "min": None, "max": None, "stdev": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"n": int(v.size), "mean": float(v.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "min": float(v.min()), "max": float(v.max()),
            "stdev": float(v.std(ddof=1)) if v.size > 1 else 0.0}


PER_REQUEST: dict[str, Callable[[RequestRecord], Optional[float]]] = {
    "ttft_ms": ttft_ms,
    "ttfa_ms": ttfa_ms,
    "tpot_ms": tpot_ms,
    "e2e_ms": e2e_ms,
    "decode_tok_s": decode_tok_s,
    "prefill_tok_s": prefill_tok_s,
}
OPEN_LOOP: dict[str, Callable[[RequestRecord], Optional[float]]] = {  # over good requests
    "ttft_from_schedule_ms": ttft_from_schedule_ms,
    "e2e_from_schedule_ms": e2e_from_schedule_ms,
}
_FROM_SCHEDULE = {"ttft_ms": ttft_from_schedule_ms, "ttfa_ms": ttfa_from_schedule_ms,
                  "e2e_ms": e2e_from_schedule_ms}
SERVER_TIMINGS = ("prompt_per_second", "predicted_per_second", "prompt_ms", "predicted_ms",
                  "prompt_n", "predicted_n", "cache_n")


def compute_metrics(records: list[RequestRecord], wall_ns: int) -> dict:
    """All headline metrics for one measured run (warm-up records excluded by the caller)."""
    good = [r for r in records if is_good(r)]
    failed = [r for r in records if not r.ok]
    wall_s = wall_ns / 1e9
    out_tok = sum(output_tokens(r) or 0 for r in good)
    m: dict = {name: summarize(f(r) for r in good) for name, f in PER_REQUEST.items()}
    m["itl_ms"] = summarize(x for r in good for x in itl_ms(r))
    if any(r.scheduled_ns is not None for r in records):
        # Lateness is the scheduler's: every request that went out has one, failed or not.
        m["lateness_ms"] = summarize(lateness_ms(r) for r in records if r.error != NOT_SENT)
        m.update({name: summarize(f(r) for r in good) for name, f in OPEN_LOOP.items()})
    m.update({
        "requests_ok": len(good),
        "requests_failed": len(failed),
        "requests_truncated": sum(1 for r in records if r.ok and truncated(r)),
        "token_count_mismatches": sum(1 for r in good if token_count_mismatch(r)),
        "output_tokens": out_tok,
        "input_tokens": sum(input_tokens(r) or 0 for r in good),
        "wall_s": wall_s,
        "output_throughput_tok_s": out_tok / wall_s if wall_s > 0 else None,
        "request_throughput_rps": len(good) / wall_s if wall_s > 0 else None,
        "cache_n_total": sum(int((r.timings or {}).get("cache_n") or 0) for r in good),
    })
    return m


def server_timings(records: list[RequestRecord], client_decode_mean: Optional[float]) -> dict:
    """What llama.cpp itself reported per request, summarised beside the client's view, and
    client_server_decode_ratio: median over requests of client decode_tok_s / server
    predicted_per_second (ratio of the means only when no request has both)."""
    good = [r for r in records if is_good(r) and r.timings]
    out = {k: summarize(r.timings.get(k) for r in good) for k in SERVER_TIMINGS}
    # The median of per-request ratios: one request whose tokens arrived in a burst (a
    # stalled client or network) has a huge client rate and would swing a ratio of means.
    paired = [c / s for r in good if (c := decode_tok_s(r)) and (s := r.timings.get("predicted_per_second"))]
    server_decode = out["predicted_per_second"]["mean"]
    if paired:
        out["client_server_decode_ratio"] = float(np.median(paired))
    else:
        out["client_server_decode_ratio"] = (client_decode_mean / server_decode
                                             if client_decode_mean and server_decode else None)
    return out


def goodput_of(records: list[RequestRecord], slo: dict, wall_ns: int) -> Optional[dict]:
    """Share and rate of requests that succeeded, were complete and met every SLO
    (`slo` maps a per-request latency of SloConfig, e.g. ttft_ms, to its upper limit). In open
    loop ttft, ttfa and e2e count from the scheduled send time: waiting for a max_concurrency slot
    is latency the user saw, and must not be hidden (coordinated omission)."""
    from .stats import goodput

    per_request = []
    for r in records:
        f = {**PER_REQUEST, **_FROM_SCHEDULE} if r.scheduled_ns is not None else PER_REQUEST
        v = {name: f[name](r) for name, lim in slo.items() if lim is not None}
        v["_ok"] = is_good(r)
        v["_one_token"] = output_tokens(r) == 1
        per_request.append(v)
    return goodput(per_request, slo, wall_ns / 1e9)
