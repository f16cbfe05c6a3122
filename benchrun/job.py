"""One job: a preset at one concurrency under one workload -> job dir with records and result.

Data flows one way: config -> server -> workload -> engine -> requests.jsonl -> metrics ->
result.json. Failures are data: a job never raises (except on Ctrl-C), it writes
`status: failed` with the error and whatever was measured.
Over 300 lines on purpose: one job's life in the order it happens (server, warm-up, repeats in
one process or in workers, telemetry, result); its parts live in load/, measure/ and results/."""
from __future__ import annotations

import datetime as dt
import subprocess
import traceback
from pathlib import Path
from typing import Optional

from benchrun import interrupts
from benchrun.config import BenchConfig, ModelConfig, plain, workers_setting
from benchrun.load import workers, workshare
from benchrun.load.client import make_session, reuse_for, token_count_body
from benchrun.load.engine import Engine, LoadPlan, run_loop
from benchrun.load.progress import Progress
from benchrun.load.records import RecordWriter, RequestRecord, read_records
from benchrun.load.selfcheck import SelfCheck
from benchrun.load.selfcheck import summary_of as check_summary
from benchrun.measure import telemetry
from benchrun.measure.catalogue import compute_metrics
from benchrun.measure.hardware import cluster_job, describe_hardware
from benchrun.measure.metrics import output_tokens, server_timings
from benchrun.measure.promscrape import Scraper
from benchrun.measure.stats import goodput_of, repeats_ci95
from benchrun.preflight import context, fit
from benchrun.provision.modelfile import describe_model
from benchrun.redact import redact
from benchrun.results import SCHEMA_VERSION, JobResult, write_result
from benchrun.servers import ServerError, ServerPool
from benchrun.servers.base import log_cause
from benchrun.servers.pool import resolve_model_path
from benchrun.servers.registry import backend_for
from benchrun.workloads import make_workload


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _copy_log_slice(src: Optional[Path], offset: int, dst: Path) -> None:
    """A reused server logs into the job dir that started it; later jobs get their slice."""
    if not src or not src.exists() or src == dst:
        return
    with open(src, "rb") as fh:
        fh.seek(offset)
        dst.write_bytes(fh.read())


class _KeepingWriter(RecordWriter):
    """Writes each record and keeps the measured ones in memory: when a job fails or is
    interrupted half way, its metrics still cover every request that finished."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.measured: list[RequestRecord] = []

    def write(self, rec: RequestRecord) -> None:
        super().write(rec)
        if not rec.warmup:
            self.measured.append(rec)


def _partial_metrics(result: JobResult, records: list[RequestRecord]) -> None:
    """Metrics of the requests that finished before a failure or Ctrl-C; wall time is the
    span from the first send to the last end, shared by the repeats those requests span."""
    if not records:
        return
    wall = max(r.end_ns for r in records) - min(r.start_ns for r in records)
    result.metrics = compute_metrics(records, wall, len({r.repeat for r in records}))
    result.server_timings = server_timings(records, result.metrics["decode_tok_s"]["mean"])
    result.error = f"{result.error} (metrics cover the {len(records)} requests measured before)"


def _check_server(server, read_timeout_s: float) -> None:
    """After the load: a dead server, or one that no longer answers the probe its start
    passed (within the requests' own stall timeout, at most 5 s), fails the job."""
    if not server.alive():
        code = server.process.returncode if server.process is not None else None
        cause = log_cause(server.log_path).replace("\n", " | ")
        raise ServerError(f"server process died during the run (exit code {code})"
                          + (f"; server.log: {cause}" if cause else ""))
    wait = max(1.0, min(5.0, read_timeout_s))
    ok, status = server.probe(wait)
    if not ok and server.process is not None:
        # A killed server may take a moment to exit on a loaded box: if it is dying, say so.
        try:
            server.process.wait(2.0)
        except subprocess.TimeoutExpired:
            pass
    if not ok and not server.alive():
        return _check_server(server, read_timeout_s)
    if not ok:
        raise ServerError(f"server stopped responding during the run (GET /health -> "
                          f"{status or f'no answer in {wait:g} s'})")


def served_name(m: ModelConfig) -> Optional[str]:
    """The `model` field of each request: llama.cpp ignores it, OpenAI-compatible servers
    require it (model.served_name, else the preset name for an external server)."""
    return backend_for(m.backend).served_name(m)


def _run_load(cfg: BenchConfig, url: str, headers: dict, workload, writer: RecordWriter, on_measure=None,
              extra_body: dict | None = None, reuse: bool = False, progress: Optional[Progress] = None,
              on_client=None, on_workers=None) -> tuple[list[list[RequestRecord]], list[int], dict]:
    """Warm-up, then `repeats` measured runs. Returns the records and wall time per repeat,
    and the server's /metrics deltas over the measured runs. on_client gets the client's check
    on itself over the measured runs (load/selfcheck.py), also when they are cut short.
    on_workers gets (worker processes used, why) once load.workers is decided (load/workers.py)."""
    plan = LoadPlan(concurrency=cfg.concurrency, rate=cfg.load.rate, arrival=cfg.load.arrival,
                    max_concurrency=cfg.load.max_concurrency, duration_s=cfg.load.duration_s,
                    seed=cfg.load.seed)
    # Every conversation is built (synthetic prompts fitted over blocking HTTP) before the
    # loop starts: no fitting inside the measured window, none blocking the event loop.
    warmups = [workload.warmup() for _ in range(cfg.load.warmup_requests)]
    # An interleaved sweep (order.py) runs one repeat per job: its round, with that repeat's
    # own prompts, so the rounds together measure what back-to-back repeats would.
    rep_ids = [cfg.round] if cfg.round is not None else list(range(cfg.repeats))
    repeats = [(rep, workload.conversations(rep)) for rep in rep_ids]
    setting = workers_setting(cfg.load.workers)
    # Worker processes take conversations whose requests are known up front, as lists of specs.
    specs = None if setting == 1 else [workshare.fixed_specs(convs) for _, convs in repeats]
    why_one = None
    if specs is not None and any(s is None for s in specs):
        specs, why_one = None, (f"workload {cfg.workload.name}'s conversations are built from the replies as "
                                f"they come (agentic pipelines also wait on each other), so they stay in one process")

    async def go():
        async with make_session(cfg.load.request_timeout_s, headers, reuse_connections=reuse) as session:
            def done(rec: RequestRecord) -> None:
                if progress is not None and not rec.warmup:
                    progress.request_done(rec.error is None and rec.status == 200, output_tokens(rec))

            engine = Engine(session, url + "/v1/chat/completions", model=served_name(cfg.model),
                            on_record=writer.write, extra_body=extra_body, on_done=done)
            warm_check = SelfCheck() if setting == "auto" else None  # auto reads the warm-up's CPU share
            warm_recs: list[RequestRecord] = []
            for convs in warmups:
                warm_recs += (await engine.run(convs, LoadPlan(concurrency=1), warmup=True, check=warm_check))[0]
            n, why = _workers_for(setting, plan, specs, why_one, warm_check, warm_recs)
            if on_workers:
                on_workers(n, why)
            pool = None
            check = SelfCheck()
            if n > 1:
                setup = workers.Setup(url + "/v1/chat/completions", served_name(cfg.model), extra_body or {},
                                      headers, cfg.load.request_timeout_s, reuse, warm_url=url + "/health")
                pool = workers.Workers(n, setup, id_start=engine.next_id)
            try:
                if pool is not None:
                    await pool.start()  # before the energy and /metrics windows open
                if on_measure:
                    on_measure()  # telemetry: the energy window starts after warm-up
                # /metrics brackets the measured repeats only (warm-up excluded).
                scraper = Scraper(session, url, cfg.load.metrics_interval_s, headers)
                await scraper.start()
                runs, walls = [], []
                for i, (rep, convs) in enumerate(repeats):
                    if pool is not None:
                        parts = workshare.worker_parts(plan, specs[i], n, rep)
                        recs, wall = await pool.run(rep, parts, writer.write, done)
                    else:
                        recs, wall = await engine.run(convs, plan, repeat=rep, check=check)
                    runs.append(recs)
                    walls.append(wall)
                return runs, walls, await scraper.stop()
            finally:
                # With workers, their own checks (every stamp was taken on one of their loops).
                client = check_summary(await pool.close()) if pool is not None else check.summary()
                if on_client:
                    on_client(client)

    return run_loop(go())


def _workers_for(setting, plan: LoadPlan, specs, why_one, warm_check, warm_recs) -> tuple[int, str]:
    """load.workers -> (processes, why), from what the warm-up measured when it is `auto`."""
    if setting == 1:
        return 1, "load.workers=1"
    good = [r for r in warm_recs if r.ok]
    e2e_s = (sum(r.end_ns - r.start_ns for r in good) / len(good) / 1e9) if good else None
    cpu = warm_check.summary()["cpu_pct"] if warm_check is not None and warm_recs else None
    convs = min(len(s) for s in specs) if specs else 1
    return workshare.choose(setting, why_one=why_one, cores=workshare.usable_cores(),
                            streams=workshare.streams_of(plan, e2e_s), limit=workshare.split_limit(plan, convs),
                            warmup_cpu_pct=cpu)


def new_result(cfg: BenchConfig, job_dir: Path, job_num: int, run_id: str, overrides: list[str] | None,
               settings: dict | None = None, hardware: dict | None = None) -> JobResult:
    """The result.json skeleton of a job that has not measured anything yet (status failed).
    hardware: what the job ran on, when not this machine (default: described here)."""
    m = cfg.model
    return JobResult(
        schema_version=SCHEMA_VERSION, status="failed", error=None, run_id=run_id,
        job={"num": job_num, "name": job_dir.name, "started_at": _now(), "finished_at": None,
             "overrides": list(overrides or []), "settings": dict(settings or {}), "cluster": cluster_job()},
        model={"name": m.name, "path": None, "sha256": None, "backend": m.backend,
               "quantization": m.quantization, "ctx_size": m.ctx_size, "parallel": m.parallel,
               "n_gpu_layers": m.n_gpu_layers, "hub_repo": m.hub_repo, "hub_file": m.hub_file,
               "package": _package_of(m)},
        server={"backend": m.backend, "command": [], "pid": None, "build_info": None,
                "startup_s": None, "reused": False, "url": m.url},
        concurrency=cfg.concurrency, repeats=cfg.repeats,
        # How the sweep ordered its jobs (order.py); round/rounds: this job is one repeat of an
        # interleaved sweep, and the report merges the rounds back into one job.
        order={"mode": cfg.order, "seed": cfg.order_seed,
               "round": cfg.round, "rounds": cfg.repeats if cfg.round is not None else 1},
        workload={"name": cfg.workload.name},
        hardware=hardware or describe_hardware(cfg.hardware),
        load=plain(cfg.load),
        metrics=compute_metrics([], 0),
        server_timings=server_timings([], None),
    )


def _package_of(m: ModelConfig) -> Optional[str]:
    """The pinned package a packaged model comes from (report: where to get it)."""
    if not m.package:
        return None
    from benchrun.provision.packaged import PACKAGED

    spec = PACKAGED.get(m.package)
    return spec.requirements[0] if spec else m.package


def _broken(server) -> bool:
    """After an unrelated failure: is the server still fit for the next job?"""
    return not server.alive() or not server.probe()[0]


def run_job(cfg: BenchConfig, job_dir: Path, pool: ServerPool, job_num: int, run_id: str,
            overrides: list[str] | None = None, jobs_total: Optional[int] = None,
            settings: dict | None = None) -> dict:
    """Runs the job and writes its result.json; returns what was written."""
    job_dir.mkdir(parents=True, exist_ok=True)
    m = cfg.model
    result = new_result(cfg, job_dir, job_num, run_id, overrides, settings)
    log_path = job_dir / "server.log"
    writer = _KeepingWriter(job_dir / "requests.jsonl")
    server = None
    server_failed = False  # a ServerError or Ctrl-C: the next job gets a fresh server
    log_offset = 0
    sampler = estimate = progress = None
    try:
        model_path = resolve_model_path(m)
        result.model.update(describe_model(m.name, model_path))
        estimate = fit.estimate_for(cfg, model_path)  # kept in the result, refused or not
        fit.check(cfg, estimate, result.hardware)  # refuses what cannot fit, before launching
        workload = make_workload(cfg.workload, cfg.concurrency)  # a bad workload launches nothing
        workload.slots = int(m.parallel) if m.parallel else None
        need = workload.context_need(context.bytes_per_token_for(m, model_path))
        result.workload["context"] = context.describe(cfg, need, model_path)
        context.check(cfg, need, model_path)  # a late turn that cannot fit one slot: refused before launch
        server, reused = pool.get(m, log_path, model_path)
        server.build_info = backend_for(server.backend).build_info(server)
        if server.log_path and server.log_path.exists():
            log_offset = server.log_path.stat().st_size if reused else 0
        result.server.update(server.describe(), reused=reused)
        workload.prepare(backend_for(server.backend).tokenizer(server))
        # now in the server's tokens, where it has them
        need = workload.context_need(context.bytes_per_token_for(m, model_path))
        result.workload["context"] = context.describe(cfg, need, model_path)
        context.check(cfg, need, model_path)
        result.workload = {"name": cfg.workload.name, **workload.describe(),
                           "context": result.workload["context"]}
        sampler = telemetry.start_for_job(cfg, server, job_dir)  # idle memory: before traffic
        try:
            # What the `auto` settings chose for this server is recorded beside them.
            llama_cpp = server.llama_cpp
            extra = token_count_body(cfg.load.token_counts, llama_cpp)
            reuse = reuse_for(cfg.load.reuse_connections, llama_cpp)
            result.load.update(added_request_fields=extra, connections_pooled=reuse)
            planned = workload.planned_requests()
            reps = 1 if cfg.round is not None else cfg.repeats
            progress = None if cfg.progress.mode == "off" else Progress(
                job_dir.name, planned * reps if planned else None, job_num + 1, jobs_total,
                cfg.progress.mode, cfg.progress.every_s)
            runs, walls, result.server_metrics = _run_load(
                cfg, server.url, server.headers, workload, writer,
                on_measure=sampler and (lambda: sampler.mark("measure")), extra_body=extra, reuse=reuse,
                progress=progress, on_client=lambda c: setattr(result, "client", c),
                on_workers=lambda n, why: result.load.update(workers_used=n, workers_why=why))
        finally:
            if progress is not None:
                progress.close()
            if sampler:
                sampler.stop()  # the telemetry window ends with the load, before checks run
        records = [r for run in runs for r in run]
        result.metrics = compute_metrics(records, sum(walls), len(walls))
        result.repeat_metrics = [compute_metrics(run, wall) for run, wall in zip(runs, walls)]
        if len(runs) > 1:
            result.repeats_ci95 = repeats_ci95(result.repeat_metrics)
        result.goodput = goodput_of(records, plain(cfg.slo), sum(walls))
        result.server_timings = server_timings(records, result.metrics["decode_tok_s"]["mean"])
        result.tasks = workload.evaluate(records)
        result.workload.update(workload.summary(records))
        _check_server(server, cfg.load.request_timeout_s)
        result.status = "ok"
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", interrupts.reason()
        server_failed = True
        raise
    except ServerError as e:
        result.error = str(e)
        if e.command and not result.server.get("command"):
            result.server["command"] = e.command  # what a failed start ran, for the user to see
        server_failed = True
    except (ValueError, workers.WorkerDied) as e:
        result.error = str(e)
    except Exception as e:  # noqa: BLE001 -- any failure becomes data; the sweep goes on
        result.error = f"{type(e).__name__}: {e}"
        (job_dir / "error.log").write_text(redact(traceback.format_exc()))  # may quote a reply
    finally:
        with interrupts.deferred():  # a signal now would cut the result short: held to the end
            writer.close()
            if result.status == "failed" and interrupts.interrupted():
                # Stopped on purpose, whatever failed first: SLURM's scancel signals the server
                # too, and it may die before benchrun hears its own signal.
                result.status, result.error = "interrupted", f"{interrupts.reason()}; first: {result.error}"
            if result.status != "ok" and result.repeat_metrics is None:
                _partial_metrics(result, writer.measured)
            result.server["memory"], result.energy, result.telemetry = telemetry.for_job(
                int(result.metrics.get("output_tokens") or 0), sampler, estimate, cfg.telemetry.enabled)
            if server is not None and result.status != "ok" and (server_failed or _broken(server)):
                pool.close()  # dead, hung or interrupted: the next job gets a fresh server
            if server is not None:
                _copy_log_slice(server.log_path, log_offset, log_path)
            result.job["finished_at"] = _now()
            write_result(job_dir, result)
    if result.status == "interrupted":  # a signal that met another failure first: stop all the same
        raise KeyboardInterrupt
    return result.to_dict()


def write_lost_result(cfg: BenchConfig, job_dir: Path, job_num: int, run_id: str, overrides: list[str],
                      settings: dict, status: str, error: str, cluster: dict, hardware: dict) -> dict:
    """result.json for a job whose own process never wrote one: killed with its node, or its
    cluster job cancelled before or while it ran. Written by the submitting process, so the
    node's hardware and cluster job are given (not this machine's). Requests the job had
    logged become partial metrics: measured data is never dropped."""
    job_dir.mkdir(parents=True, exist_ok=True)
    result = new_result(cfg, job_dir, job_num, run_id, overrides, settings, hardware)
    result.status, result.error = status, error
    result.job["cluster"] = cluster
    log = job_dir / "requests.jsonl"
    if log.is_file():
        _partial_metrics(result, [r for r in read_records(log) if not r.warmup])
    result.job["finished_at"] = _now()
    write_result(job_dir, result)
    return result.to_dict()
