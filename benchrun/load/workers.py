"""Worker processes (`load.workers=N|auto`): one job's load spread over N processes, each with
its own event loop, aiohttp session and share of the load, for when one core cannot keep up.

The design, and its limits:
  - Only conversations whose requests are all known up front (engine.Requests, which
    workloads.base.fixed makes: synthetic, depth, replay) go to workers; each travels as its
    list of RequestSpecs and stays whole in one worker. A conversation built turn by turn from
    replies -- every agentic workload, whose pipeline agents also wait on each other -- runs in
    the parent's one process, and result.json says why (load.workers_why).
  - Closed loop: the concurrency is split (shares()), and the conversations are dealt to the
    workers in proportion to their share (deal()), before the run. Each worker keeps its share
    in flight; one that runs out of conversations first does not take the other's (no queue is
    shared between processes), so the last moments of a run may have fewer than `concurrency`
    in flight where the replies' lengths differ.
  - Open loop: the parent draws the ONE schedule (engine.arrival_offsets_ns) and deals it
    round-robin (split_schedule()), so together the workers send exactly the arrival process
    asked for; each worker sends at parent t0 + offset, t0 an absolute perf_counter_ns.
    `load.max_concurrency` is split like the concurrency: a worker at its cap waits although
    another may have room.
  - Clocks: every timestamp is time.perf_counter_ns(), which on Linux is CLOCK_MONOTONIC, the
    same clock in every process of the machine (also on macOS and Windows: mach_absolute_time,
    QueryPerformanceCounter), so start, schedule and event times from different workers
    compare directly, and the records merge into one requests.jsonl.
  - Records travel to the parent as they are finished (a sender thread in the worker: a full
    pipe never blocks the worker's loop); the parent writes requests.jsonl, feeds the progress
    bar, and keeps them for the metrics. Ids stay unique: worker w of W numbers its records
    base + w, base + w + W, ... (base: the parent's next id after the warm-up).
  - Warm-up runs in the parent, before the workers start; the workers start after it and before
    the measured window (the /metrics and energy windows open once they are ready).
  - A worker that dies (killed, crashed) fails the job with that cause; the others are stopped
    at once (requests in flight are cancelled, as on Ctrl-C), and everything they finished is
    kept. Ctrl-C and SIGTERM: each worker stops, flushes what it has and exits; the parent
    stops them too, as it stops its own loop.
  - `spawn` start method: nothing is forked after threads, and it is the same on every OS.
    Starting a worker costs about a second of imports, outside the measured window.
workers=1 (the default) uses none of this: the load runs in the job's own process, as always.
Over 300 lines on purpose: both ends of one message protocol (the worker's loop, the parent's
Workers) side by side; the pure arithmetic of the split is in workshare.py."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from time import perf_counter_ns
from typing import Optional

from benchrun.load.client import RequestSpec
from benchrun.load.engine import LoadPlan, Requests
from benchrun.load.records import RequestRecord
from benchrun.load.workshare import merge_records

START_TIMEOUT_S = 120.0  # a worker that is not ready after this (imports, session) fails the job
GO_LEAD_NS = 50_000_000  # workers are told to start this far ahead, so all start at the same t0
STOP_WAIT_S = 30.0  # after a stop: how long the parent waits for the workers' last records


class WorkerDied(RuntimeError):
    """A worker process died, or stopped on its own: the job fails with this cause."""


def death_cause(index: int, count: int, pid: Optional[int], code: Optional[int], when: str,
                error: Optional[str] = None) -> str:
    """A worker's death in one line, for result.json's error."""
    if code is None:
        how = "vanished"
    elif code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    s = f"worker process {index + 1} of {count} (pid {pid}) {how} {when}"
    if error:
        lines = [x for x in error.strip().splitlines() if x.strip()]
        s += f": {lines[-1].strip()}" if lines else ""
    return s


# --- the worker process -------------------------------------------------------------------

@dataclass
class Setup:
    """What every worker needs to build its client (picklable)."""

    url: str  # the chat completions URL
    model: Optional[str]
    extra_body: dict
    headers: Optional[dict]
    read_timeout_s: float
    reuse: bool
    warm_url: Optional[str] = None  # one GET before "ready": the session's first connection is made outside the run


class _Sender:
    """The worker's messages to its parent, sent by a thread in batches: the event loop only
    appends to a queue, so a slow parent (a full pipe) never stalls a stream's timestamps."""

    def __init__(self, conn):
        self.conn = conn
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="benchrun-sender", daemon=True)
        self.thread.start()

    def put(self, msg: tuple) -> None:
        self.q.put(msg)

    def _loop(self) -> None:
        while True:
            batch = [self.q.get()]
            while True:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            last = batch[-1] is None
            batch = [m for m in batch if m is not None]
            try:
                if batch:
                    self.conn.send(batch)
            except (OSError, EOFError, ValueError):
                return  # the parent is gone
            if last:
                return

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(30)


def child_main(conn, index: int, count: int, id_start: int, setup: Setup) -> None:
    """A worker process's body (multiprocessing target)."""
    from benchrun import interrupts
    from benchrun.load.engine import run_loop

    interrupts.install(take_over=True)  # Ctrl-C / SIGTERM: stop, flush what was measured, exit
    sender = _Sender(conn)
    try:
        run_loop(_Child(conn, sender, index, count, id_start, setup).serve())
    except KeyboardInterrupt:
        pass
    except BaseException:  # noqa: BLE001 -- reported to the parent, which fails the job with it
        sender.put(("error", traceback.format_exc()))
        sender.close()
        os._exit(1)
    sender.close()


class _Child:
    def __init__(self, conn, sender: _Sender, index: int, count: int, id_start: int, setup: Setup):
        self.conn, self.sender, self.index, self.count = conn, sender, index, count
        self.id_start, self.setup = id_start, setup
        self.pending: Optional[tuple] = None
        self.task: Optional[asyncio.Task] = None
        self.closing = asyncio.Event()

    def _record(self, rec: RequestRecord) -> None:
        rec.worker = self.index
        self.sender.put(("r", rec))

    def _done(self, rec: RequestRecord) -> None:
        # Progress only: the few fields it reads, not the record's event lists.
        self.sender.put(("d", RequestRecord(id=rec.id, repeat=rec.repeat, warmup=rec.warmup, status=rec.status,
                                            error=rec.error, usage=rec.usage, timings=rec.timings)))

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """The parent's messages, read by a thread (blocking reads of whole messages: the
        loop's own readers would make the pipe non-blocking, and a large message then arrives
        cut) and handed to the loop."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):  # the parent is gone: stop
                msg = ("bye",)
            try:
                loop.call_soon_threadsafe(self._handle, msg)
            except RuntimeError:  # the loop has closed
                return
            if msg[0] == "bye":
                return

    def _handle(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "run":
            self.pending = msg[1:]
            self.sender.put(("armed", msg[1]))
        elif kind == "go" and self.pending is not None:
            repeat, specs, plan = self.pending
            self.pending = None
            self.engine.stop.clear()
            self.task = asyncio.get_running_loop().create_task(
                self._run(repeat, [Requests(s) for s in specs], replace(plan, start_ns=msg[1])))
        elif kind in ("stop", "bye"):
            if self.pending is not None:  # stopped before it started: nothing was sent
                self.sender.put(("end", self.pending[0], None, self.check.snapshot()))
            self.pending = None
            self.engine.stop.set()
            if self.task is not None and not self.task.done():
                self.task.cancel()
            if kind == "bye":
                self.closing.set()

    async def _run(self, repeat: int, convs: list, plan: LoadPlan) -> None:
        wall = None
        try:
            _, wall = await self.engine.run(convs, plan, repeat=repeat, check=self.check)
        except asyncio.CancelledError:
            pass  # stopped: the engine has flushed what finished
        self.sender.put(("end", repeat, wall, self.check.snapshot()))

    async def serve(self) -> None:
        from benchrun.load.client import make_session
        from benchrun.load.engine import Engine
        from benchrun.load.selfcheck import SelfCheck

        s = self.setup
        loop = asyncio.get_running_loop()
        async with make_session(s.read_timeout_s, s.headers, reuse_connections=s.reuse) as session:
            self.engine = Engine(session, s.url, model=s.model, on_record=self._record, extra_body=s.extra_body,
                                 on_done=self._done, id_start=self.id_start, id_step=self.count)
            self.check = SelfCheck()
            if s.warm_url:
                try:
                    async with session.get(s.warm_url) as resp:
                        await resp.read()
                except Exception:  # noqa: BLE001 -- a warm-up only; the run reports real trouble
                    pass
            threading.Thread(target=self._pump, args=(loop,), name="benchrun-inbox", daemon=True).start()
            self.sender.put(("ready", os.getpid()))
            try:
                await self.closing.wait()
                if self.task is not None:
                    await asyncio.gather(self.task, return_exceptions=True)
            except asyncio.CancelledError:  # a signal (interrupts.py): stop, flush, then exit
                self._handle(("stop",))
                if self.task is not None:
                    await asyncio.gather(self.task, return_exceptions=True)
                self.sender.put(("stopped", interrupts_reason()))
                raise


def interrupts_reason() -> str:
    from benchrun import interrupts

    return interrupts.reason()


# --- the parent's side --------------------------------------------------------------------

class Workers:
    """N worker processes for one job: start(), run() per repeat, close()."""

    def __init__(self, n: int, setup: Setup, id_start: int):
        self.n, self.setup, self.id_start = n, setup, id_start
        self.procs: list = []
        self.conns: list = []
        self.pids: list[Optional[int]] = [None] * n
        self.ready: set[int] = set()
        self.armed: set[int] = set()
        self.ends: dict[int, tuple] = {}
        self.snapshots: dict[int, tuple] = {}
        self.errors: dict[int, str] = {}
        self.stopped: dict[int, str] = {}
        self.gone: dict[int, Optional[int]] = {}  # worker -> exit code, once its process ended
        self.records: list[RequestRecord] = []
        self.phase = "before it was ready"
        self.closing = False
        self.on_record: Callable[[RequestRecord], None] = lambda r: None
        self.on_done: Callable[[RequestRecord], None] = lambda r: None
        self._changed: Optional[asyncio.Event] = None

    # messages and deaths, as they come: one thread per worker reads its pipe (blocking reads
    # of whole messages) and hands each batch, then the worker's exit, to the loop.
    def _pump(self, k: int, loop: asyncio.AbstractEventLoop) -> None:
        conn, proc = self.conns[k], self.procs[k]
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):  # the worker's end is closed: it has exited (or is exiting)
                break
            try:
                loop.call_soon_threadsafe(self._deliver, k, batch)
            except RuntimeError:  # the loop has closed
                return
        proc.join(5.0)
        try:
            loop.call_soon_threadsafe(self._exited, k, proc.exitcode)
        except RuntimeError:
            pass

    def _deliver(self, k: int, batch: list) -> None:
        for msg in batch:
            self._handle(k, msg)
        self._changed.set()

    def _handle(self, k: int, msg: tuple) -> None:
        kind = msg[0]
        if kind == "r":
            self.records.append(msg[1])
            self.on_record(msg[1])
        elif kind == "d":
            self.on_done(msg[1])
        elif kind == "end":
            self.ends[k] = msg
            self.snapshots[k] = msg[3]
        elif kind == "armed":
            self.armed.add(k)
        elif kind == "ready":
            self.ready.add(k)
            self.pids[k] = msg[1]
        elif kind == "error":
            self.errors[k] = msg[1]
        elif kind == "stopped":
            self.stopped[k] = msg[1]

    def _exited(self, k: int, code: Optional[int]) -> None:
        self.gone[k] = code
        self._changed.set()

    def _dead(self) -> Optional[str]:
        """The first worker that died or stopped on its own, as a cause; None while all live."""
        if self.closing:
            return None
        for k in sorted(set(self.gone) | set(self.stopped)):
            if k in self.stopped and k not in self.errors:
                return (f"worker process {k + 1} of {self.n} (pid {self.pids[k]}) was stopped "
                        f"{self.phase} ({self.stopped[k]})")
            return death_cause(k, self.n, self.pids[k], self.gone.get(k), self.phase, self.errors.get(k))
        return None

    async def _until(self, cond: Callable[[], bool], timeout_s: Optional[float] = None) -> bool:
        loop = asyncio.get_running_loop()
        end = None if timeout_s is None else loop.time() + timeout_s
        while not cond():
            self._changed.clear()
            left = None if end is None else end - loop.time()
            if left is not None and left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return cond()
        return True

    def _send(self, k: int, msg: tuple) -> None:
        if k not in self.gone:
            try:
                self.conns[k].send(msg)
            except (OSError, EOFError, ValueError):
                pass  # it died: its pipe's end says so

    async def start(self) -> None:
        """Start the processes; return once every one is ready (WorkerDied if one is not)."""
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        ctx = multiprocessing.get_context("spawn")
        for k in range(self.n):
            parent, child = ctx.Pipe(duplex=True)
            p = ctx.Process(target=child_main, args=(child, k, self.n, self.id_start + k, self.setup),
                            name=f"benchrun-worker-{k + 1}", daemon=True)
            p.start()
            child.close()
            self.pids[k] = p.pid
            self.procs.append(p)
            self.conns.append(parent)
            threading.Thread(target=self._pump, args=(k, loop), name=f"benchrun-worker-{k + 1}-inbox",
                             daemon=True).start()
        ok = await self._until(lambda: len(self.ready) == self.n or self._dead() is not None, START_TIMEOUT_S)
        if self._dead() is not None:
            raise WorkerDied(self._dead())
        if not ok:
            late = [k + 1 for k in range(self.n) if k not in self.ready]
            raise WorkerDied(f"worker process(es) {late} of {self.n} were not ready after {START_TIMEOUT_S:g} s")

    async def run(self, repeat: int, parts: list[tuple[LoadPlan, list[list[RequestSpec]]]],
                  on_record: Callable[[RequestRecord], None],
                  on_done: Callable[[RequestRecord], None]) -> tuple[list[RequestRecord], int]:
        """One repeat over all workers: (the merged records, wall ns from the common start to
        the last worker's end). A worker's death stops the others and raises WorkerDied; what
        every worker finished has gone to on_record by then."""
        self.on_record, self.on_done = on_record, on_done
        self.records, self.ends, self.armed = [], {}, set()
        self.phase = f"during repeat {repeat}"
        for k, (plan, convs) in enumerate(parts):
            self._send(k, ("run", repeat, convs, plan))
        try:
            await self._until(lambda: len(self.armed) == self.n or self._dead() is not None)
            if self._dead() is None:
                start = perf_counter_ns() + GO_LEAD_NS
                for k in range(self.n):
                    self._send(k, ("go", start))
                await self._until(lambda: len(self.ends) == self.n or self._dead() is not None)
            cause = self._dead()
            if cause is not None:
                await self._stop_all()
                raise WorkerDied(cause)
        except asyncio.CancelledError:  # Ctrl-C: stop every worker, keep what they finished
            await self._stop_all()
            raise
        return merge_records([self.records]), max(e[2] for e in self.ends.values())

    async def _stop_all(self) -> None:
        live = [k for k in range(self.n) if k not in self.gone]
        for k in live:
            self._send(k, ("stop",))
        await self._until(lambda: all(k in self.ends or k in self.gone for k in live), STOP_WAIT_S)

    async def close(self) -> list[tuple]:
        """Tell every worker to exit and wait for it (killed after a grace period); returns
        their self-check snapshots (selfcheck.summary_of merges them)."""
        self.closing = True
        for k in range(len(self.procs)):
            self._send(k, ("bye",))
        if self._changed is not None:
            await self._until(lambda: len(self.gone) == len(self.procs), 10.0)
        for k, p in enumerate(self.procs):
            if k not in self.gone:
                p.kill()
                p.join(5.0)
            self.conns[k].close()
        return [self.snapshots[k] for k in sorted(self.snapshots)]
