"""One job: a preset at one concurrency under one workload -> job dir with records and result.

Data flows one way: config -> server -> workload -> engine -> requests.jsonl -> metrics ->
result.json. Failures are data: a job never raises (except on Ctrl-C), it writes
`status: failed` with the error and whatever was measured."""
from __future__ import annotations

import asyncio
import datetime as dt
import platform
import traceback
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from .client import make_session
from .engine import Engine, LoadPlan
from .metrics import compute_metrics, server_timings
from .modelfile import describe_model
from .records import RecordWriter, RequestRecord
from .results import SCHEMA_VERSION, write_result
from .servers import ServerError, ServerPool
from .servers.pool import resolve_model_path
from .workloads import make_workload


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def describe_hardware(hw: Any) -> dict:
    d = {k: v for k, v in OmegaConf.to_container(hw, resolve=True).items() if v is not None}
    d.setdefault("cpu", platform.processor() or platform.machine())
    return d


def _copy_log_slice(src: Optional[Path], offset: int, dst: Path) -> None:
    """A reused server logs into the job dir that started it; later jobs get their slice."""
    if not src or not src.exists() or src == dst:
        return
    with open(src, "rb") as fh:
        fh.seek(offset)
        dst.write_bytes(fh.read())


def _run_load(cfg: Any, url: str, headers: dict, workload, writer: RecordWriter
              ) -> tuple[list[list[RequestRecord]], list[int]]:
    """Warm-up, then `repeats` measured runs. Returns the records and wall time per repeat."""
    plan = LoadPlan(concurrency=cfg.concurrency, rate=cfg.load.rate, arrival=cfg.load.arrival,
                    max_concurrency=cfg.load.max_concurrency, duration_s=cfg.load.duration_s,
                    seed=cfg.load.seed)

    async def go():
        async with make_session(cfg.load.request_timeout_s, headers) as session:
            engine = Engine(session, url + "/v1/chat/completions", on_record=writer.write)
            for _ in range(cfg.load.warmup_requests):
                await engine.run(workload.warmup(), LoadPlan(concurrency=1), warmup=True)
            runs, walls = [], []
            for rep in range(cfg.repeats):
                recs, wall = await engine.run(workload.conversations(rep), plan, repeat=rep)
                runs.append(recs)
                walls.append(wall)
            return runs, walls

    return asyncio.run(go())


def run_job(cfg: Any, job_dir: Path, pool: ServerPool, job_num: int, run_id: str,
            overrides: list[str] | None = None) -> dict:
    job_dir.mkdir(parents=True, exist_ok=True)
    m = cfg.model
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "status": "failed", "error": None, "run_id": run_id,
        "job": {"num": job_num, "name": job_dir.name, "started_at": _now(), "finished_at": None,
                "overrides": list(overrides or [])},
        "model": {"name": m.name, "path": None, "sha256": None, "backend": m.backend,
                  "quantization": m.quantization, "ctx_size": m.ctx_size, "parallel": m.parallel,
                  "n_gpu_layers": m.n_gpu_layers, "hub_repo": m.hub_repo, "hub_file": m.hub_file},
        "server": {"backend": m.backend, "command": [], "pid": None, "build_info": None,
                   "startup_s": None, "reused": False, "url": m.url},
        "concurrency": cfg.concurrency, "repeats": cfg.repeats,
        "workload": {"name": cfg.workload.name},
        "hardware": describe_hardware(cfg.hardware),
        "load": OmegaConf.to_container(cfg.load, resolve=True),
        "metrics": compute_metrics([], 0),
        "server_timings": server_timings([], None),
        "tasks": [],
    }
    log_path = job_dir / "server.log"
    writer = RecordWriter(job_dir / "requests.jsonl")
    server = None
    log_offset = 0
    try:
        result["model"].update(describe_model(m.name, resolve_model_path(m)))
        server, reused = pool.get(m, log_path)
        if server.log_path and server.log_path.exists():
            log_offset = server.log_path.stat().st_size if reused else 0
        result["server"].update(server.describe(), reused=reused)
        workload = make_workload(cfg.workload, cfg.concurrency)
        workload.prepare(server.url, server.headers)
        result["workload"] = {"name": cfg.workload.name, **workload.describe()}
        runs, walls = _run_load(cfg, server.url, server.headers, workload, writer)
        records = [r for run in runs for r in run]
        result["metrics"] = compute_metrics(records, sum(walls))
        result["repeat_metrics"] = [compute_metrics(run, wall) for run, wall in zip(runs, walls)]
        result["server_timings"] = server_timings(records, result["metrics"]["decode_tok_s"]["mean"])
        result["tasks"] = workload.evaluate(records)
        if not server.alive():
            raise ServerError("server process died during the run")
        result["status"] = "ok"
    except KeyboardInterrupt:
        result["status"], result["error"] = "interrupted", "interrupted by the user"
        raise
    except (ServerError, ValueError) as e:
        result["error"] = str(e)
    except Exception as e:  # noqa: BLE001 -- any failure becomes data; the sweep goes on
        result["error"] = f"{type(e).__name__}: {e}"
        (job_dir / "error.log").write_text(traceback.format_exc())
    finally:
        writer.close()
        if result["status"] != "ok" and server is not None and not server.alive():
            pool.discard()
        if server is not None:
            _copy_log_slice(server.log_path, log_offset, log_path)
        result["job"]["finished_at"] = _now()
        write_result(job_dir, result)
    return result
