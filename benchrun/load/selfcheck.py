"""The client's check on itself: was benchrun, not the server, the bottleneck of a measurement?

Contract: a SelfCheck is resumed by Engine.run while its streams are live and paused before the
post-stream decoding (which runs with no stream live, so its CPU and its blocking of the loop
cannot delay a timestamp). While resumed it keeps
  - the event loop's wake-up lag: a timer set PERIOD_S ahead, over and over, notes how late each
    wake-up came. Every timestamp benchrun takes is taken by code on this loop, so a wake-up
    that is late by L ms means any chunk arriving then was stamped up to L ms late too;
  - the CPU share of benchrun's process (time.process_time over wall time, 100 = one core).
summary() is result.json's `client` block:
  {"loop_lag_ms": {"p50", "p99", "max", "n"}, "cpu_pct", "saturated", "why", "bounds"}
(with load.workers > 1, summary_of merges every worker process's check, and adds `workers`).
saturated is true when the loop lag's p99 passed LAG_P99_MS or the process used CPU_PCT of a
core or more (one event loop is one thread: at a full core it queues chunks instead of stamping
them). `why` says which, in words; a lagging loop in a process that used little CPU is said to
be another process holding the CPU (a busy machine), which disturbs the timestamps all the same.
Costs its wake-ups and nothing per chunk: 20/s while benchrun's process is busy, 1/s while it
is nearly idle (under QUIET_SHARE of a core since the last one), where an idle loop's wake-up is
most of what a token costs: at c=1 (~100 tokens/s) a probe at 20/s added ~20% wake-ups, each as
dear as a token's (benchmarks/client_overhead.py); and a nearly idle process cannot lag by
itself (only a busy machine can make it late, which a sample a second still sees)."""
from __future__ import annotations

import asyncio
import random
from array import array
from time import perf_counter_ns, process_time

import numpy as np

# 20 wake-ups a second while busy: a stall of 20 ms or more is seen by a share of them
# proportional to its share of the time. 1 a second while nearly idle (see the docstring).
PERIOD_S = 0.05
QUIET_PERIOD_S = 1.0
QUIET_SHARE = 0.1  # of one core, between two wake-ups
# Bounds. A healthy loop wakes within ~1 ms (uvloop's timer granularity) and a busy machine's
# scheduler adds a few ms; 20 ms at p99 is beyond both, and is an error the size of a decode step.
LAG_P99_MS = 20.0
CPU_PCT = 90.0  # of one core


class SelfCheck:
    def __init__(self, period_s: float = PERIOD_S, quiet_period_s: float | None = None):
        self.period_s = period_s
        self.quiet_period_s = quiet_period_s or period_s * QUIET_PERIOD_S / PERIOD_S
        self.lags_ns = array("q")  # lateness of each wake-up; array: 8 bytes a sample for long jobs
        self.cpu_s = 0.0
        self.wall_ns = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop = None
        self._due = 0
        self._rng = random.Random(0)
        self._c0 = 0.0
        self._t0 = 0
        self._last = (0.0, 0)  # (process CPU s, perf ns) at the last wake-up
        self._quiet = False  # was the process nearly idle between the last two wake-ups

    # A plain timer callback, not a sleeping task: no future or task step per wake-up. Each
    # wait is drawn from 0.5-1.5 periods: a fixed period can lock in phase with periodic work
    # on the loop (wake just as each busy stretch ends) and never see it.
    def _tick(self) -> None:
        now, cpu = perf_counter_ns(), process_time()
        self.lags_ns.append(max(0, now - self._due))
        (cpu0, t0), self._last = self._last, (cpu, now)
        self._quiet = (cpu - cpu0) * 1e9 < QUIET_SHARE * (now - t0)
        self._arm(now)

    def _arm(self, now: int) -> None:
        wait = (self.quiet_period_s if self._quiet else self.period_s) * (0.5 + self._rng.random())
        self._due = now + int(wait * 1e9)
        self._timer = self._loop.call_later(wait, self._tick)

    def resume(self) -> None:
        """Start (or go on) measuring; call on the running loop."""
        if self._timer is None:
            self._loop = asyncio.get_running_loop()
            self._c0, self._t0 = process_time(), perf_counter_ns()
            self._last = (self._c0, self._t0)
            self._arm(self._t0)  # at the pace it had when paused (busy at the first start)

    def pause(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self.cpu_s += process_time() - self._c0
            self.wall_ns += perf_counter_ns() - self._t0

    def summary(self) -> dict:
        self.pause()
        return summary_of([self.snapshot()])

    def snapshot(self) -> tuple[bytes, float, int]:
        """(lags as int64 bytes, CPU seconds, wall ns) so far: picklable, what a worker process
        hands its parent (summary_of merges several)."""
        return self.lags_ns.tobytes(), self.cpu_s, self.wall_ns


def _lag(lags_ns: np.ndarray) -> dict:
    lags = lags_ns / 1e6
    return {"p50": round(float(np.percentile(lags, 50)), 3) if lags.size else None,
            "p99": round(float(np.percentile(lags, 99)), 3) if lags.size else None,
            "max": round(float(lags.max()), 3) if lags.size else None,
            "n": int(lags.size)}


def summary_of(parts: list[tuple[bytes, float, int]]) -> dict:
    """result.json's `client` block from the snapshots of one or more processes' checks (one
    per worker process, load.workers). With several: the lags are pooled (every timestamp of
    the run was taken on one of these loops), cpu_pct is the busiest process's (each event loop
    is one thread: it is one process at a full core that queues chunks), and `workers` lists
    each process's own figures."""
    per = []
    for lags_b, cpu_s, wall_ns in parts:
        lags = np.frombuffer(lags_b, dtype=np.int64)
        per.append((lags, round(100.0 * cpu_s / (wall_ns / 1e9), 1) if wall_ns else None))
    pooled = np.concatenate([p[0] for p in per]) if per else np.zeros(0, dtype=np.int64)
    lag = _lag(pooled)
    cpus = [c for _, c in per if c is not None]
    cpu = max(cpus) if cpus else None
    out = {"loop_lag_ms": lag, "cpu_pct": cpu, **judge(lag["p99"], lag["max"], cpu),
           "bounds": {"loop_lag_p99_ms": LAG_P99_MS, "cpu_pct": CPU_PCT}}
    if len(per) > 1:
        out["workers"] = [{"loop_lag_ms": _lag(lags), "cpu_pct": c} for lags, c in per]
    return out


def judge(lag_p99: float | None, lag_max: float | None, cpu_pct: float | None) -> dict:
    """{"saturated", "why"} from the figures (a pure function, so the wording is unit-tested)."""
    why = []
    if cpu_pct is not None and cpu_pct >= CPU_PCT:
        why.append(f"benchrun's process used {cpu_pct:.0f}% of a core while streaming "
                   f"(bound {CPU_PCT:.0f}%): one event loop at a full core queues chunks before it stamps them")
    if lag_p99 is not None and lag_p99 > LAG_P99_MS:
        s = (f"benchrun's event loop woke up {lag_p99:.1f} ms late at p99 (max {lag_max:.1f} ms; "
             f"bound {LAG_P99_MS:.0f} ms), so its timestamps may be that late")
        if cpu_pct is not None and cpu_pct < CPU_PCT / 2:
            s += (f", while it used only {cpu_pct:.0f}% of a core: other processes held the CPU "
                  f"(a busy machine)")
        why.append(s)
    return {"saturated": bool(why), "why": "; ".join(why) or None}
