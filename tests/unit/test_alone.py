"""support/alone.py's lock, with threads standing in for xdist workers (flock locks belong to
each open file, so two opens in one process exclude each other as two processes would)."""
from __future__ import annotations

import threading

from support.alone import machine_lock


def _holder(run_dir, alone, entered, release, log, name):
    def go():
        with machine_lock(run_dir, alone):
            log.append(f"{name} in")
            entered.set()
            release.wait(10)
            log.append(f"{name} out")
    t = threading.Thread(target=go)
    t.start()
    return t


def test_an_alone_test_waits_for_the_running_ones_and_none_starts_beside_it(tmp_path):
    run_dir, log = tmp_path, []
    ev = {k: (threading.Event(), threading.Event()) for k in ("usual", "alone", "late")}
    usual = _holder(run_dir, False, *ev["usual"], log, "usual")
    assert ev["usual"][0].wait(10)
    alone = _holder(run_dir, True, *ev["alone"], log, "alone")
    assert not ev["alone"][0].wait(0.2)  # a usual test is running: it waits
    late = _holder(run_dir, False, *ev["late"], log, "late")
    assert not ev["late"][0].wait(0.2)  # behind the waiting alone test, not beside the usual one
    ev["usual"][1].set()
    assert ev["alone"][0].wait(10)
    assert not ev["late"][0].wait(0.2)  # none starts while the alone test runs
    ev["alone"][1].set()
    assert ev["late"][0].wait(10)
    ev["late"][1].set()
    for t in (usual, alone, late):
        t.join(10)
    assert log == ["usual in", "usual out", "alone in", "alone out", "late in", "late out"]


def test_usual_tests_run_side_by_side_and_one_process_locks_nothing(tmp_path):
    run_dir, log = tmp_path, []
    first, second = (threading.Event(), threading.Event()), (threading.Event(), threading.Event())
    a = _holder(run_dir, False, *first, log, "a")
    b = _holder(run_dir, False, *second, log, "b")
    assert first[0].wait(10) and second[0].wait(10)  # both in at once
    first[1].set()
    second[1].set()
    a.join(10)
    b.join(10)
    with machine_lock(None, True), machine_lock(None, True):  # no xdist: nothing to wait for
        pass
