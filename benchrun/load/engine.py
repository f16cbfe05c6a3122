"""The load engine: drives conversations against one endpoint, closed or open loop.

A conversation is a generator that yields RequestSpecs and receives each finished
RequestRecord back (multi-turn workloads build the next turn from the last reply)."""
from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Optional

import aiohttp
import numpy as np

from benchrun import interrupts
from benchrun.load.client import RequestSpec, StallWatch, build_body, fetch
from benchrun.load.decode import parse_stream
from benchrun.load.records import NOT_SENT, RequestRecord
from benchrun.load.selfcheck import SelfCheck

Conversation = Generator[RequestSpec, RequestRecord, None]


class Requests(Generator[RequestSpec, RequestRecord, None]):
    """A conversation whose requests are all known up front (nothing reads the replies): the
    engine drives it like any generator, and, being plain data, it pickles, so a worker
    process (workers.py) can take it while unstarted."""

    def __init__(self, specs: Iterable[RequestSpec]):
        self.specs = list(specs)
        self.sent = 0  # how many requests it has handed out

    def send(self, value: object) -> RequestSpec:
        if self.sent >= len(self.specs):
            raise StopIteration
        self.sent += 1
        return self.specs[self.sent - 1]

    def throw(self, typ: object, val: object = None, tb: object = None) -> RequestSpec:
        self.sent = len(self.specs)  # closed: nothing more to hand out
        raise typ if val is None else val  # type: ignore[misc]


def run_loop(coro):
    """Run `coro` to completion on uvloop when it is installed (less CPU per event than the
    default loop, so less perturbation of a server on the same machine), else on asyncio's.
    A Ctrl-C cancels it (see interrupts.py) and comes out as KeyboardInterrupt."""
    try:
        import uvloop
        run = uvloop.run
    except ImportError:  # e.g. Windows
        run = asyncio.run
    try:
        out = run(interrupts.watched(coro))
    except asyncio.CancelledError:
        if interrupts.interrupted():
            raise KeyboardInterrupt from None
        raise
    if interrupts.interrupted():  # the cancel was lost on the way (interrupts.py)
        raise KeyboardInterrupt
    return out


@dataclass
class LoadPlan:
    concurrency: int = 1  # closed loop: this many conversations at once
    rate: Optional[float] = None  # open loop: conversations started per second
    arrival: str = "poisson"
    max_concurrency: Optional[int] = None  # open loop: cap on conversations in flight
    duration_s: Optional[float] = None  # no new request starts after this
    seed: int = 0
    # A worker process's share of a run (load/workers.py): start at this absolute
    # perf_counter_ns (CLOCK_MONOTONIC on Linux: the same clock in every process), and, open
    # loop, send at these offsets from it (the parent's one schedule, this worker's part of it)
    # instead of drawing a schedule of its own.
    start_ns: Optional[int] = None
    offsets_ns: Optional[list[int]] = None


def arrival_offsets_ns(n: int, rate: float, arrival: str, seed: int) -> list[int]:
    """Scheduled send offsets (ns from the start) for n arrivals at `rate` per second."""
    if n == 0:
        return []
    if arrival == "constant":
        gaps = np.full(n, 1.0 / rate)
    else:
        gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    gaps[0] = 0.0  # the first request goes at once
    return [int(x) for x in np.cumsum(gaps) * 1e9]


# Replies nobody reads are decoded (and written to requests.jsonl) when no stream is live --
# at once at concurrency 1, else at the end of the run or when this many wait -- never while
# other streams are being timed: decoding blocks the loop, and at c=256 even one reply at a
# time per completion put the client's ITL error p99 at ~21 ms instead of ~2 ms. So a kill
# mid-run loses what waits undecoded (nothing at concurrency 1).
DEFER_MAX = 4096


class Engine:
    def __init__(self, session: aiohttp.ClientSession, url: str, model: str | None = None,
                 on_record: Callable[[RequestRecord], None] | None = None,
                 extra_body: dict | None = None,
                 on_done: Callable[[RequestRecord], None] | None = None,
                 id_start: int = 0, id_step: int = 1):
        self.session = session
        self.url = url
        self.model = model
        self.extra_body = extra_body or {}  # request fields for every request (client.token_count_body)
        self.on_record = on_record
        self.on_done = on_done  # each request as its exchange ends (a deferred reply not decoded yet)
        self.stop = asyncio.Event()  # set -> no new request starts
        # Record ids: id_start, id_start + id_step, ... (a worker process w of W numbers its
        # records w, w + W, ... past the parent's, so ids stay unique across processes).
        self._next_id = id_start
        self._id_step = id_step
        self._deadline_ns: int | None = None
        self._deferred: list[tuple[RequestRecord, list]] = []
        self._streaming = 0  # requests in flight (a deferred decode waits until none is)
        self._check: SelfCheck | None = None  # the run's self-check, while it runs
        # Stall detection: the session's sock_read, enforced by one watchdog per run.
        stall_s = session.timeout.sock_read
        self._watch = StallWatch(stall_s) if stall_s else None

    @property
    def next_id(self) -> int:
        """The id the next record gets (worker processes number theirs from here)."""
        return self._next_id

    def _finish(self, rec: RequestRecord) -> None:
        if self.on_record:
            self.on_record(rec)

    def _flush_deferred(self) -> None:
        pending, self._deferred = self._deferred, []
        # With no stream live nothing is being timed: the decode's blocking of the loop is not
        # lag any timestamp suffered, so the self-check pauses over it (at the end of a large
        # run it blocked ~1 s, and the check said the client was saturated).
        idle = self._check if not self._streaming else None
        if idle is not None:
            idle.pause()
        try:
            for rec, chunks in pending:
                parse_stream(rec, chunks)
                self._finish(rec)
        finally:
            if idle is not None:
                idle.resume()

    def _open(self) -> bool:
        return (not self.stop.is_set() and not interrupts.interrupted()
                and (self._deadline_ns is None or perf_counter_ns() < self._deadline_ns))

    async def _converse(self, conv: Conversation, repeat: int, warmup: bool,
                        scheduled_ns: int | None, out: list) -> None:
        try:
            spec = next(conv)
        except StopIteration:
            return
        while self._open():
            if not isinstance(spec, RequestSpec):  # an awaitable: a pipeline stage waits for its inputs
                await spec
                try:
                    spec = conv.send(None)
                except StopIteration:
                    return
                continue
            rec = self._record(spec, repeat, warmup, scheduled_ns)
            body = build_body(spec, self.model, self.extra_body)
            self._streaming += 1
            try:
                chunks = await fetch(self.session, self.url, body, rec, self._watch)
            finally:
                self._streaming -= 1
            if spec.reply_needed:
                parse_stream(rec, chunks)
                self._finish(rec)
            else:  # decoded when no stream is live (see DEFER_MAX)
                self._deferred.append((rec, chunks))  # after the await: a flush meanwhile swaps the list
                if not self._streaming or len(self._deferred) > DEFER_MAX:
                    self._flush_deferred()
            if self.on_done:
                self.on_done(rec)
            out.append(rec)
            scheduled_ns = None  # later turns follow the reply at once: no schedule to miss
            try:
                spec = conv.send(rec)
            except StopIteration:
                return
        conv.close()  # stopped early: its `finally` runs, so pipeline agents waiting on it go on
        if scheduled_ns is not None and isinstance(spec, RequestSpec):
            # An open-loop arrival that the run stopped before it could start (it was waiting
            # for a max_concurrency slot): a failure, not a silent drop, or the most delayed
            # requests would vanish from the figures.
            rec = self._record(spec, repeat, warmup, scheduled_ns)
            rec.error = NOT_SENT
            rec.start_ns = rec.end_ns = perf_counter_ns()
            self._finish(rec)
            out.append(rec)

    def _record(self, spec: RequestSpec, repeat: int, warmup: bool, scheduled_ns: int | None) -> RequestRecord:
        rec = RequestRecord(id=self._next_id, repeat=repeat, warmup=warmup, tags=spec.tags,
                            scheduled_ns=scheduled_ns, expected_tokens=spec.expected_tokens)
        self._next_id += self._id_step
        return rec

    async def run(self, conversations: Iterable[Conversation], plan: LoadPlan,
                  repeat: int = 0, warmup: bool = False,
                  check: SelfCheck | None = None) -> tuple[list[RequestRecord], int]:
        """Run every conversation; return the records and the wall time in ns. Replies
        nobody reads are decoded (and handed to on_record) late (DEFER_MAX), the rest at the
        end, also when it is interrupted. `check` (selfcheck.py) measures the client's own
        loop lag and CPU while streams are live."""
        watchdog = asyncio.create_task(self._watch.run()) if self._watch else None
        # Objects that exist before the run (modules, config, earlier records) are moved out
        # of the collector's reach: a full collection mid-run then scans only the run's own
        # objects (a full pass over everything took 35-45 ms on the 2-core test box).
        gc.freeze()
        if check is not None:
            check.resume()
        self._check = check
        try:
            return await self._run(conversations, plan, repeat, warmup)
        finally:
            self._check = None
            if check is not None:
                check.pause()
            if watchdog:
                watchdog.cancel()
            gc.unfreeze()
            self._flush_deferred()

    async def _run(self, conversations: Iterable[Conversation], plan: LoadPlan,
                   repeat: int, warmup: bool) -> tuple[list[RequestRecord], int]:
        out: list[RequestRecord] = []
        if plan.start_ns is not None:  # a worker: every worker starts at the parent's one t0
            while (left := plan.start_ns - perf_counter_ns()) > 0 and not self.stop.is_set():
                try:
                    await asyncio.wait_for(self.stop.wait(), left / 1e9)
                except asyncio.TimeoutError:
                    pass
        t0 = perf_counter_ns() if plan.start_ns is None else plan.start_ns
        self._deadline_ns = t0 + int(plan.duration_s * 1e9) if plan.duration_s else None
        convs = list(conversations)
        if plan.rate is None:
            queue = iter(convs)

            async def worker() -> None:
                for conv in queue:  # a shared iterator: each conversation taken once
                    if not self._open():
                        return
                    await self._converse(conv, repeat, warmup, None, out)

            await asyncio.gather(*(worker() for _ in range(min(plan.concurrency, len(convs)) or 1)))
        else:
            cap = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else None
            offsets = (plan.offsets_ns if plan.offsets_ns is not None
                       else arrival_offsets_ns(len(convs), plan.rate, plan.arrival, plan.seed + repeat))

            async def launch(conv: Conversation, due_ns: int) -> None:
                if cap is None:
                    await self._converse(conv, repeat, warmup, due_ns, out)
                    return
                async with cap:  # waiting here shows up as lateness, never hidden
                    await self._converse(conv, repeat, warmup, due_ns, out)

            tasks = []
            for conv, off in zip(convs, offsets):
                due = t0 + off
                # The loop's timers have ~1 ms granularity and may fire early: sleep again
                # until due (never send early), with 0.5 ms added so one sleep is usually enough.
                while (left := due - perf_counter_ns()) > 0 and not self.stop.is_set():
                    try:
                        await asyncio.wait_for(self.stop.wait(), left / 1e9 + 0.0005)
                    except asyncio.TimeoutError:
                        pass
                if not self._open():
                    break
                tasks.append(asyncio.create_task(launch(conv, due)))
            await asyncio.gather(*tasks)
        return out, perf_counter_ns() - t0
