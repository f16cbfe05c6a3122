"""Tests that measure this machine's speed run alone when pytest-xdist runs tests side by side.

A test marked `alone` (one that compares two timings taken minutes apart, such as benchrun's
tg beside llama-bench's, or an A/A pair's verdict) would read the other worker's load as a
difference. Every test holds a lock across the processes of one test run for its whole
protocol (setup, call, teardown, so a module fixture's server or sweep is covered too): shared
for the usual test, exclusive for an `alone` one. A turnstile in front keeps the usual tests from
starving a waiting `alone` one: it waits for the tests running now, and none starts until it is
done. The lock files live in the run's own temp dir (the parent of each worker's basetemp),
which pytest's retention cleans. Without xdist (one process) there is nothing to lock."""
from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def machine_lock(run_dir: Path | None, alone: bool) -> Iterator[None]:
    """Hold the run's lock (in run_dir, shared by its processes; None: one process) for the duration."""
    if run_dir is None:
        yield
        return
    with open(run_dir / "alone.turnstile", "a") as turnstile, open(run_dir / "alone.machine", "a") as machine:
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # behind any `alone` test already waiting
        try:
            fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)
