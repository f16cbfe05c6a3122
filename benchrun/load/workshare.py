"""How one job's load is divided among worker processes (workers.py runs them), as pure
functions: how many workers (`load.workers=N|auto`, choose), each one's share of the
concurrency or of the one open-loop schedule (worker_parts), which conversations can travel
(fixed_specs), and the workers' records merged back into one list (merge_records)."""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Optional

from benchrun.load.client import RequestSpec
from benchrun.load.engine import Conversation, LoadPlan, Requests, arrival_offsets_ns
from benchrun.load.records import RequestRecord
from benchrun.load.selfcheck import CPU_PCT

# `auto` gives a job more than one worker when it will have at least this many streams in
# flight (closed loop: concurrency; open loop: load.max_concurrency, else rate x the warm-up's
# e2e) or when the warm-up's single stream alone kept benchrun's process at CPU_PCT of a core.
# Why 128: benchrun costs ~30-70 us of CPU per streamed token at high concurrency
# (docs/measurement.md), so 128 streams of ~60 tokens/s each (a fast GPU server) are ~7,700
# tokens/s, about half a core: above that one core is at risk; below, one worker keeps up.
AUTO_STREAMS = 128
AUTO_MAX = 4  # auto never takes more than this many worker processes (nor more than the cores)

def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def shares(total: int, n: int) -> list[int]:
    """`total` (a concurrency, a cap) split over n workers as evenly as integers allow, the
    larger shares first: shares(5, 2) == [3, 2]."""
    return [total // n + (k < total % n) for k in range(n)]


def deal(count: int, weights: list[int]) -> list[list[int]]:
    """Indices 0..count-1 dealt to len(weights) workers in proportion to their weights
    (smooth weighted round-robin: each next index goes to the worker furthest below its
    share, ties to the lower worker), so each worker's conversations are spread over the run's
    order: deal(6, [2, 1]) == [[0, 1, 3, 4], [2, 5]]."""
    out: list[list[int]] = [[] for _ in weights]
    for i in range(count):
        k = min(range(len(weights)), key=lambda w: ((len(out[w]) + 1) / weights[w], w))
        out[k].append(i)
    return out


def split_schedule(count: int, n: int) -> list[list[int]]:
    """The arrivals 0..count-1 of one schedule dealt round-robin to n workers: worker k sends
    arrivals k, k + n, ... (each at its own offset from the common t0)."""
    return [list(range(k, count, n)) for k in range(n)]


def worker_parts(plan: LoadPlan, conversations: list[list[RequestSpec]], n: int,
                 repeat: int) -> list[tuple[LoadPlan, list[list[RequestSpec]]]]:
    """Each worker's plan and conversations for one repeat. Closed loop: a share of the
    concurrency and the conversations dealt by it. Open loop: the one schedule, drawn here
    with the seed the in-process engine would use, split round-robin; the cap split as evenly."""
    if plan.rate is None:
        conc = shares(plan.concurrency, n)
        return [(replace(plan, concurrency=c), [conversations[i] for i in idx])
                for c, idx in zip(conc, deal(len(conversations), conc))]
    offsets = arrival_offsets_ns(len(conversations), plan.rate, plan.arrival, plan.seed + repeat)
    caps = shares(plan.max_concurrency, n) if plan.max_concurrency else [None] * n
    return [(replace(plan, max_concurrency=cap, offsets_ns=[offsets[i] for i in idx]),
             [conversations[i] for i in idx])
            for cap, idx in zip(caps, split_schedule(len(conversations), n))]


def merge_records(parts: Iterable[Iterable[RequestRecord]]) -> list[RequestRecord]:
    """The workers' records of one run as one list, in order of their send times (ids break ties)."""
    return sorted((r for part in parts for r in part), key=lambda r: (r.start_ns, r.id))


def fixed_specs(conversations: list[Conversation]) -> Optional[list[list[RequestSpec]]]:
    """Each conversation's RequestSpecs when every one is an unstarted engine.Requests (its
    requests known up front); else None: some conversation is built from the replies and
    cannot leave the process it was made in."""
    if not all(isinstance(c, Requests) and c.sent == 0 for c in conversations):
        return None
    return [c.specs for c in conversations]  # type: ignore[union-attr]


def choose(setting: int | str, *, why_one: Optional[str], cores: int, streams: Optional[int],
           limit: int, warmup_cpu_pct: Optional[float] = None) -> tuple[int, str]:
    """How many worker processes a job uses, and why (result.json load.workers_used / _why).
    why_one: the reason the workload must stay in one process (None: it can be split).
    streams: how many requests will be in flight at once (None: unknown). limit: the most
    workers the load can be split over (each needs a conversation, and, closed loop, a slot
    of the concurrency; open loop with a cap, a slot of the cap).
    warmup_cpu_pct: the client's CPU share during the warm-up (selfcheck), when measured."""
    if setting == "auto":
        if why_one:
            return 1, f"auto: 1 worker: {why_one}"
        if cores < 2:
            return 1, "auto: 1 worker: this process may use only one core"
        signals = []
        if streams is not None and streams >= AUTO_STREAMS:
            signals.append(f"{streams} requests in flight at once (auto splits from {AUTO_STREAMS})")
        if warmup_cpu_pct is not None and warmup_cpu_pct >= CPU_PCT:
            signals.append(f"the warm-up alone kept benchrun's process at {warmup_cpu_pct:.0f}% of a core")
        if not signals:
            lead = f"{streams} requests in flight at once" if streams is not None else "the load in flight is unknown"
            cpu = f", the warm-up used {warmup_cpu_pct:.0f}% of a core" if warmup_cpu_pct is not None else ""
            return 1, f"auto: 1 worker: {lead} (auto splits from {AUTO_STREAMS}){cpu}: one core keeps up"
        n = min(cores, AUTO_MAX)
        why = f"auto: {n} workers ({cores} usable cores): " + "; ".join(signals)
    else:
        n = int(setting)
        if n == 1:
            return 1, "load.workers=1"
        if why_one:
            return 1, f"load.workers={n}, but 1 worker: {why_one}"
        why = f"load.workers={n}"
    if n > limit:
        n = max(1, limit)
        why += f"; {n}: no more workers than the load can be split over ({limit})"
    return n, why


def streams_of(plan: LoadPlan, warmup_e2e_s: Optional[float]) -> Optional[int]:
    """Requests in flight at once: closed loop the concurrency; open loop the cap, else
    rate x one request's time (Little's law, from the warm-up), else unknown."""
    if plan.rate is None:
        return plan.concurrency
    if plan.max_concurrency:
        return plan.max_concurrency
    return math.ceil(plan.rate * warmup_e2e_s) if warmup_e2e_s else None


def split_limit(plan: LoadPlan, conversations: int) -> int:
    """The most workers a load can be split over (see choose)."""
    cap = plan.concurrency if plan.rate is None else plan.max_concurrency or conversations
    return max(1, min(cap, conversations))
