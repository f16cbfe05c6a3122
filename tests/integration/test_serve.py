"""`benchrun serve` end to end: a real preset in the foreground, reachable at the printed URL,
stopped cleanly by SIGINT (what Ctrl-C sends) with its server process gone."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from benchrun.servers.base import http_json


@pytest.mark.slow
def test_serve_prints_url_and_stops_on_ctrl_c(tmp_path):
    # SIGINT at its default: a harness that started us in the background (nohup, `&`) would
    # otherwise hand down "ignore SIGINT", and Ctrl-C would never reach benchrun.
    proc = subprocess.Popen([sys.executable, "-m", "benchrun", "serve", "model=tiny", "model.parallel=2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    server_pid = None
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"benchrun: serving tiny at (http://\S+) \(pid (\d+)\)", line)
            if m:
                url, server_pid = m.group(1), int(m.group(2))
                break
        assert server_pid, "".join(lines)
        assert psutil.pid_exists(server_pid)
        assert http_json(url + "/health") == (200, {"status": "ok"})
        status, props = http_json(url + "/props")
        assert status == 200 and props["total_slots"] == 2  # the override reached the server
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=180)  # a ceiling for a loaded machine, not a bound
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server_pid and psutil.pid_exists(server_pid):
            os.kill(server_pid, signal.SIGKILL)
    assert proc.returncode == 0, rest
    assert "benchrun: stopped tiny" in rest
    assert not psutil.pid_exists(server_pid)
    assert http_json(url + "/health", timeout=1.0)[0] == 0  # nothing answers any more
    logs = list((tmp_path / "outputs" / "serve").glob("tiny_*/server.log"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0


def test_serve_bad_input_is_one_line(cli):
    for args, expect in [
        (("serve", "model=external", "model.url=http://127.0.0.1:9"), "serve starts a preset"),
        (("serve", "model=tiny", "hardware.memory_mib=1"), "has 1 MiB of RAM"),
        (("serve", "tiny"), "expected key=value overrides"),
        (("serve", "model=tiny", "model.ctx_sise=8"), "unknown config key 'model.ctx_sise'; keys at 'model': "),
        (("serve", "model=nope"), "unknown model 'nope'; allowed: "),
    ]:
        proc, cwd = cli(*args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert expect in proc.stderr and "Traceback" not in proc.stderr
        assert not (cwd / "outputs").exists()  # nothing was started
