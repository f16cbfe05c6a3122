"""Ctrl-C and SIGTERM: the first one stops the run, later ones are ignored, so an impatient
second Ctrl-C cannot cut short the writing of what was measured or the stopping of servers.

While run_loop drives the load, the first signal cancels it at an await point (as asyncio's own
runner does), the engine flushes what it has, and run_loop then raises KeyboardInterrupt. A
cancel can be lost on its way through the libraries (seen when the server got the same signal
and died at that moment: the run then ended as if nothing had happened), so the engine also
stops starting requests, and run_loop raises even when the loop ended normally. Inside
`deferred()` (a job writing its result) the signal is held until the end, so what is written
is written whole. Elsewhere the first signal raises KeyboardInterrupt at once."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import Optional

_state: dict = {"signals": 0, "task": None, "first": None, "defer": 0, "held": False}


def _handler(signum, frame) -> None:
    _state["signals"] += 1
    _state["first"] = _state["first"] or signum
    if _state["signals"] > 1:
        return
    task: Optional[asyncio.Task] = _state["task"]
    if task is not None and not task.done():
        task.get_loop().call_soon_threadsafe(task.cancel)  # also wakes the loop
        return
    if _state["defer"]:
        _state["held"] = True
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """A first signal arriving inside is raised on leaving, not in the middle."""
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
    if not _state["defer"] and _state["held"]:
        _state["held"] = False
        raise KeyboardInterrupt


def install(take_over: bool = False) -> None:
    """Take over SIGINT and SIGTERM where nobody else has (submitit, for one, has its own).
    take_over: also from another handler. In a cluster job SIGTERM is how SLURM stops the job
    (scancel, preemption) and submitit's worker ignores it; benchrun takes it back, so the job
    stops, writes what it measured and stops its server within the grace period (KillWait)
    instead of being killed."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        if take_over or signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler, None):
            signal.signal(sig, _handler)


def reason() -> str:
    """Why the run stopped, for result.json's error."""
    if _state["first"] == signal.SIGTERM:
        return "interrupted by SIGTERM (a scheduler's cancel or preemption, or kill)"
    return "interrupted by the user"


def ignore() -> None:
    """From here to the exit, ignore both signals outright: the interpreter resets a Python
    handler to the default at shutdown, and a late Ctrl-C would then kill the exit code."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def interrupted() -> bool:
    return _state["signals"] > 0


async def watched(coro):
    """Run `coro` as the task the first signal cancels."""
    _state["task"] = asyncio.current_task()
    try:
        return await coro
    finally:
        _state["task"] = None
