"""Live progress: a bar on a terminal, plain lines elsewhere, fed once per finished request.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_progress.py."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest


@pytest.mark.slow
def test_a_sweep_without_a_terminal_prints_plain_lines(cli):
    proc, _ = cli("-m", "model=tiny", "concurrency=1,2", "workload.requests=6", "workload.output_tokens=8",
                  "report=false", "progress.every_s=0.000001")
    assert proc.returncode == 0, proc.stderr
    for job, n in (("[1/2] 0_tiny_c1", 6), ("[2/2] 1_tiny_c2", 6)):
        seen = [ln for ln in proc.stderr.splitlines() if ln.startswith(job + " ")]
        assert [ln.split(" requests")[0].rsplit(" ", 1)[1] for ln in seen] == [f"{i}/{n}" for i in range(1, n + 1)]
    assert "\r" not in proc.stderr and "%|" not in proc.stderr  # no bar drawing into a pipe
    # Interleaved repeats are jobs of their own: the count says so.
    reps, _ = cli("-m", "model=tiny", "repeats=2", "workload.requests=2", "workload.output_tokens=8",
                  "report=false", "progress.every_s=0.000001")
    assert reps.returncode == 0 and "[2/2] 1_tiny_c1 2/2 requests" in reps.stderr, reps.stderr
    off, _ = cli("model=tiny", "workload.requests=3", "report=false", "progress.mode=off",
                 "progress.every_s=0.000001")
    assert off.returncode == 0 and "requests, 0 failed" not in off.stderr
    bad, _ = cli("model=tiny", "progress.mode=fancy")
    assert bad.returncode == 2 and "progress.mode must be one of auto, bar, lines, off" in bad.stderr


@pytest.mark.slow
def test_on_a_terminal_a_bar_shows_job_requests_and_failures(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "benchrun", "model=tiny", "workload.requests=24",
                             "workload.output_tokens=32", "report=false"],
                            stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=tmp_path)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            screen += data
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "[1/1] 0_tiny_c1:" in text and "/24 [" in text and "req/s" in text and "0 failed" in text, text
    assert "\r" in text  # redrawn in place
