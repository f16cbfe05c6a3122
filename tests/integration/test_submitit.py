"""hydra/launcher=submitit_local: the cluster path (one process per job, as on SLURM nodes)
on this machine. Each worker starts and stops its own server; results land in one sweep dir
and one summary covers them.
This half runs servers, processes or sockets; the parts that need none are in tests/unit/test_submitit.py."""
from __future__ import annotations

import json

import psutil
import pytest
from support import output_dir_of, survivors

from benchrun.results import read_result


@pytest.mark.slow
def test_submitit_local_sweep_lands_in_one_dir_and_stops_its_servers(cli, tmp_path):
    mark = f"{tmp_path}-submitit"
    proc, _ = cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                  "model=tiny", "concurrency=1,2", "workload.requests=2", "load.warmup_requests=0",
                  env={"BENCHRUN_TEST_MARK": mark})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / output_dir_of(proc.stdout)
    res = {p.parent.name: read_result(p) for p in out.glob("*/result.json")}
    assert sorted(res) == ["0_tiny_c1", "1_tiny_c2"]
    assert all(r["status"] == "ok" and r["metrics"]["requests_ok"] == 2 for r in res.values())
    assert len({r["run_id"] for r in res.values()}) == 1
    # Separate worker processes: no shared pool, so each job started its own server ...
    pids = [r["server"]["pid"] for r in res.values()]
    assert len(set(pids)) == 2 and not any(r["server"]["reused"] for r in res.values())
    # ... and stopped it.
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert survivors(mark) == []
    assert (out / ".submitit").is_dir()  # it really went through submitit
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["job"] for r in summary) == ["0_tiny_c1", "1_tiny_c2"]
