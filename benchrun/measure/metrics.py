"""Pure per-request metric functions over RequestRecords (one record -> one value or list).

Per-request metrics return None when undefined (a failed request, a one-token reply for ITL);
summaries only ever see successful, complete requests.

Tokens vs events: one SSE event can carry several tokens (llama.cpp holds back incomplete
UTF-8, so CJK text and emoji arrive 2-4 tokens at a time) or none (role, finish, usage).
`itl_ms` is per *token*: an event that brings k new tokens, a gap g after the previous
token-bearing event, contributes k samples of g/k. `chunk_gap_ms` is the gap between
consecutive token events, unsplit. The tokens each event carried come from the server
(`event_tokens`, see client.py), else are assumed one per event; when the server's total
disagrees with that, the total is spread evenly over the gaps (token_count_source "spread").
docs/measurement.md states the definitions and compares them with other tools'.
Over many requests: a metric's summary is summaries.py's and why requests failed is
failures.py's; server_timings (llama.cpp's per-request timings, summarised beside the client's
decode rate) stays here, where job.py imports it."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from benchrun.load.records import CONTENT, TOKEN_KINDS, RequestRecord
from benchrun.measure.summaries import summarize

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
            return float(ns) / NS_PER_MS
    return None


def ttfa_ms(r: RequestRecord) -> Optional[float]:
    """Send -> first answer (content) token: honest TTFT for thinking models."""
    for ns, k in zip(r.event_ns, r.event_kinds):
        if k == CONTENT:
            return float(ns) / NS_PER_MS
    return None


def token_count_source(r: RequestRecord) -> Optional[str]:
    """How the tokens per event are known: "timings" or "logprobs" (the server said, per
    event), "events" (one per token event; the server's total agrees or is unknown), "spread"
    (the server's total differs and no per-event counts came: spread evenly), None (no token)."""
    if not any(k in TOKEN_KINDS for k in r.event_kinds):
        return None
    if r.event_tokens is not None and len(r.event_tokens) == len(r.event_kinds):
        return r.token_source or "timings"
    n = output_tokens(r)
    return "events" if n is None or n == token_events(r) else "spread"


def _token_steps(r: RequestRecord) -> list[tuple[int, float]]:
    """(arrival offset ns, new tokens) of every event that brought tokens, from the first token
    event on (the TTFT event, with every token counted up to it). With per-event counts from
    the server, a later event with no visible text that still brought tokens is a step too
    (the usage chunk after an EOS the server counts), and a token event that brought no new
    token is not. Without them every token event is one token, or, for "spread", every step
    after the first carries an equal share of the remaining server tokens. Events the client
    received in one network read (the same stamp) are one step: it cannot tell when each of
    them arrived, and a busy client reading a fast server gets many at once."""
    return _merge_reads(_event_steps(r))


def _merge_reads(steps: list[tuple[int, float]]) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    for ns, k in steps:
        if out and out[-1][0] == ns:
            out[-1] = (ns, out[-1][1] + k)
        else:
            out.append((ns, k))
    return out


def _event_steps(r: RequestRecord) -> list[tuple[int, float]]:
    src = token_count_source(r)
    if src is None:
        return []
    if src in ("timings", "logprobs"):
        steps: list[tuple[int, float]] = []
        pending = 0
        # (token_count_source said "timings"/"logprobs": event_tokens is there, one per event)
        for ns, k, n in zip(r.event_ns, r.event_kinds, r.event_tokens or []):
            n = int(n or 0)
            if not steps:
                pending += n
                if k in TOKEN_KINDS:
                    steps.append((ns, pending))
            elif n > 0:
                steps.append((ns, n))
        return steps
    t = token_offsets_ns(r)
    steps = [(ns, 1.0) for ns in t]
    n = output_tokens(r)
    if src == "spread" and len(t) >= 2 and n is not None and n >= 1:
        share = (n - 1) / (len(t) - 1)
        steps = [(t[0], 1.0)] + [(ns, share) for ns in t[1:]]
    return steps


def itl_ms(r: RequestRecord) -> list[float]:
    """Per-token inter-token latency: each step after the first (see _token_steps) brings k
    tokens a gap g after the step before; it contributes k samples of g/k (k need not be whole
    for "spread": then one sample of g/k). Tokens in the first token event arrived inside TTFT
    and have no gap of their own: they give no sample. So a request's mean ITL is
    (last step - first step) / (tokens after the first read)."""
    steps = _token_steps(r)
    out: list[float] = []
    for (a, _), (b, k) in zip(steps, steps[1:]):
        if k <= 0:
            continue
        g = (b - a) / k / NS_PER_MS
        reps = int(k) if float(k).is_integer() else 1
        out.extend([g] * reps)
    return out


def chunk_gap_ms(r: RequestRecord) -> list[float]:
    """Gaps between consecutive token events (content or reasoning), however many tokens each
    carried: the stream's rhythm as the client saw it."""
    t = token_offsets_ns(r)
    return [(b - a) / NS_PER_MS for a, b in zip(t, t[1:])]


def tokens_per_event(r: RequestRecord) -> Optional[float]:
    """Server output tokens per token event: 1.0 when every event is one token; about 2-3 on
    CJK text and emoji, where llama.cpp holds back incomplete UTF-8."""
    n, m = output_tokens(r), token_events(r)
    return n / m if n is not None and m else None


def e2e_ms(r: RequestRecord) -> float:
    return (r.end_ns - r.start_ns) / NS_PER_MS


def tpot_ms(r: RequestRecord) -> Optional[float]:
    """(e2e - ttft) / (tokens after the first read): mean time per output token once the first
    arrived. The read that brought the first token may bring k1 > 1 tokens (several tokens per
    event, by the server's per-event counts, or several events in one read); their decoding
    happened inside TTFT, and dividing the rest of the stream by n - 1 (vLLM's TPOT, which this
    is when k1 = 1) would credit it with k1 - 1 tokens it never carried -- on a fast model read
    by a busy client, a decode rate several times what the server did. None when nothing came
    after the first read: the client saw no decoding at all."""
    n, first = output_tokens(r), ttft_ms(r)
    steps = _token_steps(r)
    if n is None or first is None or len(steps) < 2:
        return None
    after = n - steps[0][1]
    return (e2e_ms(r) - first) / after if after >= 1 else None


def decode_tok_s(r: RequestRecord) -> Optional[float]:
    t = tpot_ms(r)
    return 1000.0 / t if t else None


def prefill_tok_s(r: RequestRecord) -> Optional[float]:
    """Prompt tokens over TTFT, as the client sees it (includes queueing and network)."""
    n, first = input_tokens(r), ttft_ms(r)
    if not n or not first:
        return None
    return n / (first / 1000.0)


def cache_counts(r: RequestRecord) -> Optional[tuple[int, int]]:
    """(prompt tokens taken from the slot's KV cache, prompt tokens processed) as llama.cpp
    reports them (timings.cache_n, timings.prompt_n); None when the server reports neither
    (not llama.cpp): not reported is not zero."""
    t = r.timings or {}
    if t.get("cache_n") is None or t.get("prompt_n") is None:
        return None
    return int(t["cache_n"]), int(t["prompt_n"])


def cache_share(r: RequestRecord) -> Optional[float]:
    """The share of the request's prompt that came from the prompt cache (None: not reported)."""
    c = cache_counts(r)
    return None if c is None or sum(c) == 0 else c[0] / sum(c)


def cache_hit_share(records: Iterable[RequestRecord]) -> Optional[float]:
    """Prompt tokens from the cache over all prompt tokens, over the requests that report both."""
    counts = [c for r in records if (c := cache_counts(r)) is not None]
    total = sum(a + b for a, b in counts)
    return sum(a for a, _ in counts) / total if total else None


def queue_ms(r: RequestRecord) -> Optional[float]:
    """TTFT less llama.cpp's own prompt processing time (timings.prompt_ms): the part of the
    wait for the first token that was not prefill -- mostly waiting for a free slot when more
    requests are in flight than model.parallel, plus network, HTTP and tokenizing. None when the
    server reports no prompt_ms (not llama.cpp) or no token came. Not clamped at 0: the server's
    and the client's clocks time different spans, so a tiny negative value means "no wait"."""
    first = ttft_ms(r)
    prompt = (r.timings or {}).get("prompt_ms")
    if first is None or not isinstance(prompt, (int, float)):
        return None
    return first - float(prompt)


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
    """The server's per-event token counts do not add up to its own total (usage). A stream
    whose events carry several tokens each is not a mismatch: that is what the per-event counts
    explain. Without per-event counts there is nothing to add up (see token_count_source)."""
    if token_count_source(r) not in ("timings", "logprobs"):
        return False
    n = output_tokens(r)
    return n is not None and n != sum(int(x or 0) for x in r.event_tokens or [])


def cut_at_max_tokens(r: RequestRecord) -> bool:
    """A reply the server stopped at max_tokens (finish_reason "length") where the workload did
    not ask for an exact length: its text may be cut mid-code. Still a valid measurement."""
    return r.ok and r.expected_tokens is None and r.finish_reason == "length"


def connect_ms(r: RequestRecord) -> Optional[float]:
    """DNS + TCP (+ TLS) setup of a new connection; None for a reused one or when unknown."""
    return r.connect_ns / NS_PER_MS if r.connection == "new" and r.connect_ns is not None else None


def truncated(r: RequestRecord) -> bool:
    """Complete, but not as long as the workload demanded."""
    return r.expected_tokens is not None and output_tokens(r) != r.expected_tokens


def is_good(r: RequestRecord) -> bool:
    """Counts in latency figures: succeeded, and not truncated."""
    return r.ok and not truncated(r)


FROM_SCHEDULE = {  # open loop: the latencies counted from the scheduled send
    "ttft_ms": ttft_from_schedule_ms, "ttfa_ms": ttfa_from_schedule_ms,
                  "e2e_ms": e2e_from_schedule_ms}
SERVER_TIMINGS = ("prompt_per_second", "predicted_per_second", "prompt_ms", "predicted_ms",
                  "prompt_n", "predicted_n", "cache_n")


def server_timings(records: list[RequestRecord], client_decode_mean: Optional[float]) -> dict[str, Any]:
    """What llama.cpp itself reported per request, summarised beside the client's view, and
    client_server_decode_ratio: median over requests of client decode_tok_s / server
    predicted_per_second (ratio of the means only when no request has both)."""
    good = [r for r in records if is_good(r) and r.timings]
    # {timing name: Summary, ..., "client_server_decode_ratio": float | None}
    out: dict[str, Any] = {k: summarize((r.timings or {}).get(k) for r in good) for k in SERVER_TIMINGS}
    # The median of per-request ratios: one request whose tokens arrived in a burst (a
    # stalled client or network) has a huge client rate and would swing a ratio of means.
    paired = [c / s for r in good
              if (c := decode_tok_s(r)) and (s := (r.timings or {}).get("predicted_per_second"))]
    server_decode = out["predicted_per_second"]["mean"]
    if paired:
        out["client_server_decode_ratio"] = float(np.median(paired))
    else:
        out["client_server_decode_ratio"] = (client_decode_mean / server_decode
                                             if client_decode_mean and server_decode else None)
    return out
